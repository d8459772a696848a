package org.moespark;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/** Build-time versions (filtered from the POM). */
public final class Version {
  private static final Properties PROPS = load();

  private Version() {}

  /** moespark's version, e.g. 0.1.0-SNAPSHOT. */
  public static String moespark() {
    return PROPS.getProperty("version", "unknown");
  }

  /** The Spark version moespark was compiled against. */
  public static String sparkCompiledAgainst() {
    return PROPS.getProperty("spark.version", "unknown");
  }

  private static Properties load() {
    Properties p = new Properties();
    try (InputStream in = Version.class.getResourceAsStream("version.properties")) {
      if (in != null) {
        p.load(in);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return p;
  }
}
