package org.moespark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Renders the routing report in headless Chromium (Debian packages {@code chromium},
 * {@code chromium-driver}; {@code .ci/run} installs them) and checks the screenshot: a PNG of the
 * requested size that is not blank, with the report's colours in it. The screenshot is kept under
 * {@code jobs/target/report-screenshots/} to look at.
 */
class RoutingReportRenderTest {
  private static final Path CHROMIUM = Path.of("/usr/bin/chromium");
  private static final int WIDTH = 1400;
  private static final int HEIGHT = 2000;

  private final SparkSession spark = TestSpark.session();

  @TempDir Path tmp;

  @Test
  void reportRendersInHeadlessChromium() throws Exception {
    assumeTrue(Files.isExecutable(CHROMIUM), "headless Chromium is not installed at " + CHROMIUM
        + " (apt-get install chromium chromium-driver; .ci/run does it)");
    // 64 experts, top-8, skewed routing: every chart has something to draw.
    List<org.apache.spark.sql.Row> rows = ScoredData.skewed(3000, 64, 8, 7);
    RoutingStats stats = RoutingStats.compute(ScoredData.of(spark, rows), "id", 64, RoutingStats.DEFAULT_BINS);
    Path html = tmp.resolve("report.html");
    Files.writeString(html, RoutingReport.html(stats, "render test", "3000 skewed tokens"), StandardCharsets.UTF_8);

    Path png = Path.of("target", "report-screenshots", "routing-report.png").toAbsolutePath();
    Files.createDirectories(png.getParent());
    Files.deleteIfExists(png);
    screenshot(html, png);

    BufferedImage img = ImageIO.read(png.toFile());
    assertTrue(img != null, "Chromium wrote no readable PNG at " + png);
    assertEquals(WIDTH, img.getWidth(), "screenshot width");
    assertEquals(HEIGHT, img.getHeight(), "screenshot height");
    // Not blank: many distinct colours and a real spread of brightness over a grid of samples.
    java.util.Set<Integer> colours = new java.util.HashSet<>();
    double sum = 0;
    double sumSq = 0;
    int n = 0;
    for (int y = 0; y < HEIGHT; y += 8) {
      for (int x = 0; x < WIDTH; x += 8) {
        int rgb = img.getRGB(x, y) & 0xffffff;
        colours.add(rgb);
        double lum = 0.299 * (rgb >> 16) + 0.587 * ((rgb >> 8) & 0xff) + 0.114 * (rgb & 0xff);
        sum += lum;
        sumSq += lum * lum;
        n++;
      }
    }
    double mean = sum / n;
    double std = Math.sqrt(Math.max(0, sumSq / n - mean * mean));
    assertTrue(colours.size() >= 20, "screenshot looks blank: only " + colours.size() + " distinct colours in " + png);
    assertTrue(std > 5.0, "screenshot looks blank: brightness std " + std + " in " + png);
  }

  private static void screenshot(Path html, Path png) throws IOException, InterruptedException {
    Path profile = Files.createTempDirectory("moespark-chromium");
    List<String> cmd = List.of(CHROMIUM.toString(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", "--user-data-dir=" + profile, "--screenshot=" + png, "--window-size=" + WIDTH + "," + HEIGHT,
        html.toUri().toString());
    Path log = png.resolveSibling("chromium.log");
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    try {
      if (!p.waitFor(120, TimeUnit.SECONDS)) {
        throw new AssertionError("Chromium did not finish within 120 s; log: " + log);
      }
      assertEquals(0, p.exitValue(), () -> "Chromium exit code; log " + log + ":\n" + readQuietly(log));
      assertTrue(Files.size(png) > 0, () -> "Chromium wrote no screenshot; log:\n" + readQuietly(log));
    } finally {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
      try (var walk = Files.walk(profile)) {
        walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
      }
    }
  }

  private static String readQuietly(Path p) {
    try {
      return Files.readString(p);
    } catch (IOException e) {
      return "(unreadable: " + e + ")";
    }
  }
}
