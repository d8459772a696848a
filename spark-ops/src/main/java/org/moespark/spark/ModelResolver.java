package org.moespark.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkEnv;
import org.apache.spark.SparkFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple2;

/**
 * Turns the model URI of a {@code moe_score} call into a local directory. Accepted forms:
 * <ul>
 *   <li>a local path ({@code /models/olmoe}, {@code file:/models/olmoe}, a relative path that exists);
 *   <li>the name of a directory shipped with {@code SparkContext.addFile(dir, true)} / {@code --files}
 *       (looked up with {@link SparkFiles#get});
 *   <li>any Hadoop FileSystem URI ({@code hdfs://…}, {@code s3a://…}, …): copied once per JVM into a local
 *       temporary directory, deleted when the JVM exits.
 * </ul>
 */
public final class ModelResolver {
  private static final Logger LOG = LoggerFactory.getLogger(ModelResolver.class);
  private static final Map<String, Path> COPIED = new ConcurrentHashMap<>();

  private ModelResolver() {}

  /** Whether {@code uri} names a non-local Hadoop FileSystem location. */
  public static boolean isRemote(String uri) {
    String scheme = scheme(uri);
    return scheme != null && !scheme.equals("file");
  }

  /**
   * The local directory for {@code uri}, copying a remote one on first use.
   *
   * @param hadoopConf used for remote URIs; null to build one from the executor's Spark conf
   * @throws IllegalArgumentException when nothing exists under that name (the message lists where it looked)
   */
  public static Path resolve(String uri, Configuration hadoopConf) {
    if (uri == null || uri.isBlank()) {
      throw new IllegalArgumentException("model URI must not be empty, got '" + uri + "'");
    }
    String scheme = scheme(uri);
    if (scheme == null) {
      Path p = Path.of(uri);
      if (Files.exists(p)) {
        return p.toAbsolutePath();
      }
      String shipped = null;
      if (!p.isAbsolute() && SparkEnv.get() != null) {
        try {
          Path f = Path.of(SparkFiles.get(uri));
          if (Files.exists(f)) {
            return f;
          }
          shipped = f.toString();
        } catch (RuntimeException e) {
          shipped = "unavailable (" + e.getMessage() + ")";
        }
      }
      throw new IllegalArgumentException("model path '" + uri + "' does not exist (local path "
          + p.toAbsolutePath() + (shipped == null ? "" : "; SparkFiles " + shipped) + ")");
    }
    if (scheme.equals("file")) {
      Path p = Path.of(toUri(uri));
      if (!Files.exists(p)) {
        throw new IllegalArgumentException("model path '" + uri + "' does not exist (local path " + p + ")");
      }
      return p;
    }
    return COPIED.computeIfAbsent(uri, u -> copyRemote(u, hadoopConf != null ? hadoopConf : executorHadoopConf()));
  }

  /**
   * Driver-side check of a remote model without downloading its weights: the directory and its
   * {@code config.json} exist; {@code config.json} is copied alone and checked with
   * {@link ModelChecks#checkConfig}.
   */
  public static void checkRemote(String uri, int layer, Configuration hadoopConf) {
    try {
      org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(toUri(uri));
      FileSystem fs = src.getFileSystem(hadoopConf);
      if (!fs.exists(src)) {
        throw new IllegalArgumentException("model path '" + uri + "' does not exist");
      }
      if (!fs.getFileStatus(src).isDirectory()) {
        throw new IllegalArgumentException("model path '" + uri + "' is not a directory");
      }
      org.apache.hadoop.fs.Path cfg = new org.apache.hadoop.fs.Path(src, "config.json");
      if (!fs.exists(cfg)) {
        throw new IllegalArgumentException("model " + uri + ": no config.json");
      }
      Path tmp = Files.createTempDirectory("moespark-config");
      try {
        fs.copyToLocalFile(false, cfg, new org.apache.hadoop.fs.Path(tmp.resolve("config.json").toUri()), true);
        ModelChecks.checkConfig(tmp, layer);
      } finally {
        deleteTree(tmp);
      }
    } catch (IOException e) {
      throw new IllegalArgumentException("model " + uri + ": cannot read: " + e, e);
    }
  }

  /** Copies the remote directory {@code uri} into a fresh local temporary directory. */
  static Path copyRemote(String uri, Configuration conf) {
    try {
      org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(toUri(uri));
      FileSystem fs = src.getFileSystem(conf);
      if (!fs.exists(src)) {
        throw new IllegalArgumentException("model path '" + uri + "' does not exist");
      }
      Path dst = Files.createTempDirectory("moespark-model");
      Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dst)));
      long t0 = System.nanoTime();
      for (org.apache.hadoop.fs.FileStatus st : fs.listStatus(src)) {
        fs.copyToLocalFile(false, st.getPath(),
            new org.apache.hadoop.fs.Path(dst.resolve(st.getPath().getName()).toUri()), true);
      }
      LOG.info("moe_score: copied model {} to {} in {} ms", uri, dst, (System.nanoTime() - t0) / 1_000_000);
      return dst;
    } catch (IOException e) {
      throw new UncheckedIOException("model " + uri + ": copy to a local directory failed: " + e, e);
    }
  }

  private static Configuration executorHadoopConf() {
    Configuration conf = new Configuration();
    SparkEnv env = SparkEnv.get();
    if (env != null) {
      for (Tuple2<String, String> kv : env.conf().getAll()) {
        if (kv._1().startsWith("spark.hadoop.")) {
          conf.set(kv._1().substring("spark.hadoop.".length()), kv._2());
        }
      }
    }
    return conf;
  }

  private static String scheme(String uri) {
    int colon = uri.indexOf(':');
    if (colon <= 1) { // no scheme, or a Windows drive letter
      return null;
    }
    String s = uri.substring(0, colon);
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (!(Character.isLetterOrDigit(c) || c == '+' || c == '-' || c == '.')) {
        return null;
      }
    }
    return s.toLowerCase(java.util.Locale.ROOT);
  }

  private static URI toUri(String uri) {
    try {
      return new URI(uri);
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("model URI '" + uri + "' is not a valid URI: " + e.getMessage(), e);
    }
  }

  private static void deleteTree(Path root) {
    try (var walk = Files.walk(root)) {
      walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException | UncheckedIOException ignored) {
      // best effort at exit
    }
  }
}
