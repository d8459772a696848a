package org.moespark.jobs;

import java.io.PrintStream;
import org.moespark.Version;
import org.moespark.cuda.NativeLibrary;

/** {@code moe version}: versions, and whether the GPU backend is available (and if not, why). */
final class VersionCommand implements Main.Command {
  @Override
  public String summary() {
    return "print versions and whether the GPU backend is available";
  }

  @Override
  public int run(String[] args, PrintStream out) {
    if (args.length > 0) {
      throw new Main.UsageException("takes no arguments: " + String.join(" ", args));
    }
    out.println("moespark    " + Version.moespark());
    out.println("java        " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")");
    out.println("spark       " + sparkVersion() + " (compiled against " + Version.sparkCompiledAgainst() + ")");
    out.println("scala       " + scalaVersion());
    out.println("gpu backend " + NativeLibrary.describe());
    return 0;
  }

  private static String sparkVersion() {
    try {
      // org.apache.spark.package$ cannot be named in Java source ("package" is a keyword).
      Class<?> c = Class.forName("org.apache.spark.package$");
      Object module = c.getField("MODULE$").get(null);
      return (String) c.getMethod("SPARK_VERSION").invoke(module);
    } catch (ReflectiveOperationException | LinkageError e) {
      return "not on the class path";
    }
  }

  private static String scalaVersion() {
    try {
      return (String) Class.forName("scala.util.Properties").getMethod("versionNumberString").invoke(null);
    } catch (ReflectiveOperationException | LinkageError e) {
      return "not on the class path";
    }
  }
}
