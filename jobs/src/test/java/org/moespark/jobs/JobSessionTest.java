package org.moespark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The extension list a job's own session is created with: MoeExtensions once, others kept in order. */
class JobSessionTest {
  private static final String MOE = "org.moespark.spark.MoeExtensions";

  @Test
  void addsMoeExtensionsOnceAndKeepsTheUsersExtensions() {
    assertEquals(MOE, JobSession.withMoeExtensions(null));
    assertEquals(MOE, JobSession.withMoeExtensions("  "));
    assertEquals("io.delta.sql.DeltaSparkSessionExtension," + MOE,
        JobSession.withMoeExtensions("io.delta.sql.DeltaSparkSessionExtension"));
    assertEquals("a.B, " + MOE + ", c.D", JobSession.withMoeExtensions("a.B, " + MOE + ", c.D"));
  }
}
