package org.moespark.jobs;

import java.io.PrintStream;

/** {@code moe gen model}: a tiny random MoE checkpoint in Hugging Face layout. */
final class GenModel {
  private GenModel() {}

  static int run(String[] argv, PrintStream out) {
    throw new Main.UsageException("'gen model' needs org.moespark.model.SafeTensorsWriter, which is not on main yet");
  }
}
