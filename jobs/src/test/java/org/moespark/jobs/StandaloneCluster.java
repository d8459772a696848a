package org.moespark.jobs;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real Spark standalone cluster on 127.0.0.1 for tests (spark-integration.md §6): one Master and N
 * Workers started as separate JVMs from the Maven-resolved jars of this test's class path, collected in a
 * fake {@code SPARK_HOME/jars} (symlinks), plus {@code spark-submit} by calling {@code SparkSubmit} through
 * {@code java -cp}. Our own classes (reactor {@code target/classes} directories, or module jars) go into
 * one application jar that the driver serves to the executors.
 *
 * <p>JVM flags: the {@code moespark.jvmFlags} property of the root {@code pom.xml} (the single source, as
 * for {@code bin/moe}). Ports: free ones picked on 127.0.0.1. Every process this class starts is stopped by
 * its pid in {@link #close()} (SIGTERM, then SIGKILL after a grace period), together with the processes it
 * spawned (the executors under a Worker, looked up by pid); a JVM shutdown hook does the same if the test
 * JVM dies first.
 */
final class StandaloneCluster implements AutoCloseable {
  private static final List<Process> STARTED = new CopyOnWriteArrayList<>();
  private static final Set<Long> SPAWNED = Collections.synchronizedSet(new HashSet<>());

  static {
    Runtime.getRuntime().addShutdownHook(new Thread(StandaloneCluster::killAll, "standalone-cluster-cleanup"));
  }

  private final Path dir;
  private final Path home;
  private final Path appJar;
  private final List<String> jvmFlags;
  private final int masterPort;
  private final Process master;
  private final List<Process> workers = new ArrayList<>();

  private StandaloneCluster(Path dir, Path home, Path appJar, List<String> jvmFlags, int masterPort, Process master) {
    this.dir = dir;
    this.home = home;
    this.appJar = appJar;
    this.jvmFlags = jvmFlags;
    this.masterPort = masterPort;
    this.master = master;
  }

  /**
   * Starts a Master and {@code workers} Workers ({@code cores} cores and {@code memory} each, e.g.
   * {@code "1g"}) and waits until every Worker has registered.
   */
  static StandaloneCluster start(Path dir, int workers, int cores, String memory) throws Exception {
    Files.createDirectories(dir.resolve("logs"));
    Path home = dir.resolve("spark-home");
    Path jars = home.resolve("jars");
    Files.createDirectories(jars);
    Path appJar = dir.resolve("moespark-app.jar");
    List<Path> classDirs = new ArrayList<>();
    Set<String> names = new HashSet<>();
    for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
      Path p = Path.of(e);
      if (Files.isDirectory(p)) {
        if (!p.getFileName().toString().equals("test-classes")) {
          classDirs.add(p);
        }
      } else if (e.endsWith(".jar") && Files.exists(p) && names.add(p.getFileName().toString())) {
        Files.createSymbolicLink(jars.resolve(p.getFileName().toString()), p.toAbsolutePath());
      }
    }
    writeJar(appJar, classDirs);
    List<String> flags = jvmFlags();
    int port = freePort();
    StandaloneCluster c = null;
    Process m = launch(home, flags, dir.resolve("logs/master.log"), "-Xmx256m", "org.apache.spark.deploy.master.Master",
        "--host", "127.0.0.1", "--port", "" + port, "--webui-port", "" + freePort());
    try {
      c = new StandaloneCluster(dir, home, appJar, flags, port, m);
      waitForLog(dir.resolve("logs/master.log"), "Starting Spark master at spark://127.0.0.1:" + port, m, 120);
      for (int i = 0; i < workers; i++) {
        Path log = dir.resolve("logs/worker-" + i + ".log");
        Path work = dir.resolve("work-" + i);
        Files.createDirectories(work);
        Process w = launch(home, flags, log, "-Xmx256m", "org.apache.spark.deploy.worker.Worker",
            "--host", "127.0.0.1", "--cores", "" + cores, "--memory", memory, "--work-dir", work.toString(),
            "--webui-port", "" + freePort(), c.masterUrl());
        c.workers.add(w);
      }
      for (int i = 0; i < workers; i++) {
        waitForLog(dir.resolve("logs/worker-" + i + ".log"), "Successfully registered with master", c.workers.get(i), 120);
      }
      return c;
    } catch (Exception | Error e) {
      if (c != null) {
        c.close();
      } else {
        stop(m);
      }
      throw e;
    }
  }

  String masterUrl() {
    return "spark://127.0.0.1:" + masterPort;
  }

  Path appJar() {
    return appJar;
  }

  /** The pid of Worker {@code i}. */
  long workerPid(int i) {
    return workers.get(i).pid();
  }

  /** Kills Worker {@code i} with SIGKILL, by its pid (its executor is stopped in {@link #close()} if it survives). */
  void killWorker(int i) throws InterruptedException {
    Process w = workers.get(i);
    w.descendants().forEach(d -> SPAWNED.add(d.pid()));
    ProcessHandle.of(w.pid()).ifPresent(ProcessHandle::destroyForcibly);
    if (!w.waitFor(30, TimeUnit.SECONDS)) {
      throw new IllegalStateException("worker " + i + " (pid " + w.pid() + ") survived SIGKILL for 30 s");
    }
  }

  /** A running {@code spark-submit}: its process and the lines of its stdout so far. */
  record Submission(Process process, List<String> stdout, Path log) {
    /** Waits for a stdout line matching {@code p}, at most {@code seconds}; returns it. */
    String awaitLine(Predicate<String> p, int seconds) throws InterruptedException {
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
      int seen = 0;
      while (System.nanoTime() < end) {
        for (; seen < stdout.size(); seen++) {
          if (p.test(stdout.get(seen))) {
            return stdout.get(seen);
          }
        }
        if (!process.isAlive() && seen >= stdout.size()) {
          throw new AssertionError("spark-submit exited with " + process.exitValue() + " before the expected line; "
              + "stdout " + stdout + "; log " + log);
        }
        Thread.sleep(100);
      }
      throw new AssertionError("no expected line from spark-submit within " + seconds + " s; stdout " + stdout);
    }

    /** Waits for the exit, at most {@code seconds}; returns the exit code. */
    int await(int seconds) throws InterruptedException {
      if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
        throw new AssertionError("spark-submit still running after " + seconds + " s; stdout " + stdout + "; log " + log);
      }
      return process.exitValue();
    }
  }

  /**
   * {@code spark-submit --master <this cluster> --deploy-mode client --class org.moespark.jobs.Main <app jar> args}
   * with {@code conf} as {@code --conf k=v}.
   */
  Submission submit(String name, Map<String, String> conf, String... args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of("org.apache.spark.deploy.SparkSubmit", "--master", masterUrl(),
        "--deploy-mode", "client", "--class", "org.moespark.jobs.Main", "--name", name));
    for (Map.Entry<String, String> e : conf.entrySet()) {
      cmd.add("--conf");
      cmd.add(e.getKey() + "=" + e.getValue());
    }
    cmd.add(appJar.toString());
    cmd.addAll(List.of(args));
    Path log = dir.resolve("logs/submit-" + name + ".log");
    List<String> all = new ArrayList<>(List.of(javaBin(), "-Xmx512m"));
    all.addAll(jvmFlags);
    all.addAll(List.of("-cp", home.resolve("jars") + File.separator + "*"));
    all.addAll(cmd);
    ProcessBuilder pb = new ProcessBuilder(all).redirectError(log.toFile());
    env(pb, home);
    Process p = pb.start();
    STARTED.add(p);
    List<String> lines = new CopyOnWriteArrayList<>();
    Thread t = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
          PrintWriter w = new PrintWriter(Files.newBufferedWriter(dir.resolve("logs/submit-" + name + ".out")), true)) {
        for (String l; (l = r.readLine()) != null; ) {
          lines.add(l);
          w.println(l);
        }
      } catch (IOException ignored) {
        // the process ended
      }
    }, "submit-" + name + "-stdout");
    t.setDaemon(true);
    t.start();
    return new Submission(p, lines, log);
  }

  @Override
  public void close() {
    List<Process> mine = new ArrayList<>(workers);
    mine.add(master);
    for (Process p : mine) {
      p.descendants().forEach(d -> SPAWNED.add(d.pid()));
    }
    for (Process p : mine) {
      stop(p);
    }
    killSpawned();
  }

  /** Stops every process started by any cluster of this JVM (the shutdown hook; also drivers left running). */
  static void killAll() {
    for (Process p : STARTED) {
      p.descendants().forEach(d -> SPAWNED.add(d.pid()));
    }
    for (Process p : STARTED) {
      stop(p);
    }
    killSpawned();
  }

  private static void killSpawned() {
    List<Long> pids;
    synchronized (SPAWNED) {
      pids = new ArrayList<>(SPAWNED);
    }
    for (long pid : pids) {
      ProcessHandle.of(pid).ifPresent(h -> {
        h.destroyForcibly();
        h.onExit().orTimeout(10, TimeUnit.SECONDS).exceptionally(x -> null).join();
      });
    }
  }

  private static void stop(Process p) {
    if (!p.isAlive()) {
      return;
    }
    ProcessHandle.of(p.pid()).ifPresent(ProcessHandle::destroy);
    try {
      if (!p.waitFor(15, TimeUnit.SECONDS)) {
        ProcessHandle.of(p.pid()).ifPresent(ProcessHandle::destroyForcibly);
        p.waitFor(15, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      ProcessHandle.of(p.pid()).ifPresent(ProcessHandle::destroyForcibly);
      Thread.currentThread().interrupt();
    }
  }

  private static Process launch(Path home, List<String> flags, Path log, String heap, String mainClass, String... args)
      throws IOException {
    List<String> cmd = new ArrayList<>(List.of(javaBin(), heap));
    cmd.addAll(flags);
    cmd.addAll(List.of("-cp", home.resolve("jars") + File.separator + "*", mainClass));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    env(pb, home);
    Process p = pb.start();
    STARTED.add(p);
    return p;
  }

  private static void env(ProcessBuilder pb, Path home) {
    pb.environment().put("SPARK_HOME", home.toString());
    pb.environment().put("SPARK_SCALA_VERSION", "2.13");
    pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
    pb.environment().remove("SPARK_CONF_DIR");
  }

  private static String javaBin() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  /** Waits until {@code log} contains {@code text}; fails early when the process dies. */
  static void waitForLog(Path log, String text, Process p, int seconds) throws IOException, InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < end) {
      if (Files.exists(log) && Files.readString(log, StandardCharsets.ISO_8859_1).contains(text)) {
        return;
      }
      if (!p.isAlive()) {
        throw new IllegalStateException("process " + p.pid() + " exited with " + p.exitValue() + " before logging '"
            + text + "'; log " + log + ":\n" + tail(log));
      }
      Thread.sleep(200);
    }
    throw new IllegalStateException("no '" + text + "' in " + log + " within " + seconds + " s:\n" + tail(log));
  }

  static String tail(Path log) throws IOException {
    if (!Files.exists(log)) {
      return "(no log)";
    }
    List<String> l = Files.readAllLines(log, StandardCharsets.ISO_8859_1);
    return String.join("\n", l.subList(Math.max(0, l.size() - 40), l.size()));
  }

  /** The {@code moespark.jvmFlags} property of the root pom.xml (found upwards from the working directory). */
  static List<String> jvmFlags() throws IOException {
    Pattern prop = Pattern.compile("<moespark.jvmFlags>(.*?)</moespark.jvmFlags>", Pattern.DOTALL);
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      Path pom = d.resolve("pom.xml");
      if (Files.exists(pom)) {
        Matcher m = prop.matcher(Files.readString(pom));
        if (m.find()) {
          return List.of(m.group(1).trim().split("\\s+"));
        }
      }
    }
    throw new IllegalStateException("no pom.xml with <moespark.jvmFlags> above " + Path.of("").toAbsolutePath());
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    }
  }

  private static void writeJar(Path jar, List<Path> classDirs) throws IOException {
    Set<String> seen = new HashSet<>();
    try (OutputStream os = Files.newOutputStream(jar); JarOutputStream jos = new JarOutputStream(os)) {
      for (Path root : classDirs) {
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult visitFile(Path f, BasicFileAttributes attrs) throws IOException {
            String name = root.relativize(f).toString().replace(File.separatorChar, '/');
            if (seen.add(name) && !name.startsWith("META-INF/MANIFEST")) {
              jos.putNextEntry(new JarEntry(name));
              Files.copy(f, jos);
              jos.closeEntry();
            }
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes attrs) throws IOException {
            String name = root.relativize(d).toString().replace(File.separatorChar, '/');
            if (!name.isEmpty() && seen.add(name + "/")) {
              jos.putNextEntry(new JarEntry(name + "/"));
              jos.closeEntry();
            }
            return FileVisitResult.CONTINUE;
          }
        });
      }
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }
}
