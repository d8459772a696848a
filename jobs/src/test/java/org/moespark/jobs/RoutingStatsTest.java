package org.moespark.jobs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moespark.testing.Tolerance;

class RoutingStatsTest {
  private final SparkSession spark = TestSpark.session();

  @TempDir Path tmp;

  /**
   * Five tokens, E = 4 (expert 3 idle), K = 2, one dropped slot. All weights are exact binary
   * fractions, so bins are exact. Hand-computed below.
   */
  private Dataset<Row> hand() {
    return ScoredData.of(spark, List.of(
        ScoredData.row(0, new int[] {0, 1}, new float[] {0.5f, 0.5f}),
        ScoredData.row(1, new int[] {0, 1}, new float[] {1.0f, 0.0f}),
        ScoredData.row(2, new int[] {2, 0}, new float[] {0.75f, 0.25f}),
        ScoredData.row(3, new int[] {1, -1}, new float[] {0.625f, 0.0f}),
        ScoredData.row(4, new int[] {2, 1}, new float[] {0.375f, 0.125f})));
  }

  @Test
  void handBuiltRoutingGivesExactNumbers() {
    RoutingStats s = RoutingStats.compute(hand(), "id", 4, 20);
    assertEquals(5, s.tokens);
    assertEquals(2, s.topK);
    assertEquals(4, s.experts);
    assertEquals(9, s.assignments);
    assertEquals(1, s.droppedSlots);
    assertArrayEquals(new long[] {3, 4, 2, 0}, s.load, "load");
    assertArrayEquals(new double[] {1.75, 1.25, 1.125, 0.0}, s.weightSum, "weight sums (exact binary fractions)");
    assertArrayEquals(new long[] {3, 2, 1, 0}, s.coactivation[0], "co-activation row 0");
    assertArrayEquals(new long[] {2, 4, 1, 0}, s.coactivation[1], "co-activation row 1");
    assertArrayEquals(new long[] {1, 1, 2, 0}, s.coactivation[2], "co-activation row 2");
    assertArrayEquals(new long[] {0, 0, 0, 0}, s.coactivation[3], "co-activation row 3");
    assertEquals(1, s.idleExperts());
    assertEquals(2.25, s.meanLoad());
    assertEquals(4 / 2.25, s.imbalance());
    assertEquals(3.0 / 9, s.share(0));

    double ln2 = Math.log(2);
    double h = -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)); // tokens 2 and 4
    double loadH = -(3.0 / 9 * Math.log(3.0 / 9) + 4.0 / 9 * Math.log(4.0 / 9) + 2.0 / 9 * Math.log(2.0 / 9));
    assertEquals(5, s.tokensWithEntropy);
    Tolerance.FP32.assertClose(
        new float[] {(float) s.entropyMean, (float) s.entropyMin, (float) s.entropyMax, (float) s.loadEntropy(),
            (float) s.loadEntropyNormalised(), (float) s.entropyHi},
        new float[] {(float) ((ln2 + 2 * h) / 5), 0f, (float) ln2, (float) loadH, (float) (loadH / Math.log(4)), (float) ln2},
        "entropies");
    assertEquals(0.0, s.entropyMin, 0.0, "a one-hot token has entropy +0");
    // Bins of width ln2/20: 0 -> bin 0 (tokens 1, 3), h/ln2*20 = 16.2 -> bin 16 (tokens 2, 4), ln2 -> last bin.
    long[] eh = new long[20];
    eh[0] = 2;
    eh[16] = 2;
    eh[19] = 1;
    assertArrayEquals(eh, s.entropyHistogram, "entropy histogram");

    assertEquals(1.0, s.weightHi);
    assertEquals(1.0, s.maxWeight);
    long[] r1 = new long[20];
    r1[10] = 1; // 0.5
    r1[19] = 1; // 1.0 (the upper end goes into the last bin)
    r1[15] = 1; // 0.75
    r1[12] = 1; // 0.625
    r1[7] = 1;  // 0.375
    long[] r2 = new long[20];
    r2[10] = 1; // 0.5
    r2[0] = 1;  // 0.0
    r2[5] = 1;  // 0.25
    r2[2] = 1;  // 0.125 (token 3 has no second slot)
    assertArrayEquals(r1, s.weightHistogram[0], "rank 1 histogram");
    assertArrayEquals(r2, s.weightHistogram[1], "rank 2 histogram");
    assertArrayEquals(new double[] {3.25 / 5, 0.875 / 4}, s.meanWeightByRank, "mean weight per rank");
  }

  @Test
  void expertCountIsInferredAndWeightsAboveOneWidenTheRange() {
    RoutingStats s = RoutingStats.compute(hand(), "id", 0, 20);
    assertEquals(3, s.experts, "1 + largest id");
    assertArrayEquals(new long[] {3, 4, 2}, s.load);
    assertEquals(3, s.coactivation.length);

    // DeepSeek-V3-like weights scaled by 2.5 (sorted order ignored: rank 1 = largest).
    RoutingStats d = RoutingStats.compute(ScoredData.of(spark, List.of(
        ScoredData.row(7, new int[] {5, 2, 0}, new float[] {0.5f, 2.25f, 0.25f}))), "id", 8, 4);
    assertEquals(3.0, d.weightHi, "ceil(2.25)");
    assertArrayEquals(new long[] {0, 0, 0, 1}, d.weightHistogram[0], "2.25 in [2.25, 3]");
    assertArrayEquals(new long[] {1, 0, 0, 0}, d.weightHistogram[1], "0.5 in [0, 0.75)");
    assertArrayEquals(new long[] {1, 0, 0, 0}, d.weightHistogram[2], "0.25 in [0, 0.75)");
    assertArrayEquals(new long[] {1, 0, 1, 0, 0, 1, 0, 0}, d.load);
    assertEquals(8.0 / 3, d.imbalance(), 0.0, "max 1 / mean 3/8");
  }

  @Test
  void emptyInputAndAllDropped() {
    RoutingStats s = RoutingStats.compute(ScoredData.of(spark, List.of()), "id", 4, 5);
    assertEquals(0, s.tokens);
    assertEquals(0, s.topK);
    assertEquals(0, s.assignments);
    assertArrayEquals(new long[4], s.load);
    assertTrue(Double.isNaN(s.imbalance()));
    assertTrue(Double.isNaN(s.entropyMean));
    assertTrue(RoutingReport.html(s, "empty", "nothing").contains("<svg"));

    RoutingStats d = RoutingStats.compute(ScoredData.of(spark, List.of(
        ScoredData.row(1, new int[] {-1, -1}, new float[] {0f, 0f}))), "id", 2, 5);
    assertEquals(2, d.droppedSlots);
    assertEquals(0, d.tokensWithEntropy, "a token routed nowhere has no entropy");
    assertArrayEquals(new long[2], d.load);
  }

  @Test
  void badRowsAreNamedByTheirId() {
    Map<String, Row> cases = new HashMap<>();
    cases.put("row with id=42: topk_ids holds an id >= the expert count E = 3 (--experts); topk_ids = [0, 3]",
        ScoredData.row(42, new int[] {0, 3}, new float[] {0.5f, 0.5f}));
    cases.put("row with id=43: topk_ids and topk_weights have different lengths; size(topk_ids) = 2; size(topk_weights) = 1",
        ScoredData.row(43, new int[] {0, 1}, new float[] {1f}));
    cases.put("row with id=44: topk_ids names the same expert twice; topk_ids = [1, 1]",
        ScoredData.row(44, new int[] {1, 1}, new float[] {0.5f, 0.5f}));
    cases.put("row with id=45: topk_weights holds a null, NaN, infinite or negative weight; topk_weights = [0.5, -0.1]",
        ScoredData.row(45, new int[] {0, 1}, new float[] {0.5f, -0.1f}));
    cases.put("row with id=46: topk_ids holds an id below -1 or null; topk_ids = [-2, 1]",
        ScoredData.row(46, new int[] {-2, 1}, new float[] {0.5f, 0.5f}));
    cases.put("row with id=47: topk_ids has a different length than other rows (K = 2); size(topk_ids) = 1",
        ScoredData.row(47, new int[] {1}, new float[] {1f}));
    cases.put("row with id=48: topk_weights holds a null, NaN, infinite or negative weight; topk_weights = [NaN, 0.5]",
        ScoredData.row(48, new int[] {0, 1}, new float[] {Float.NaN, 0.5f}));
    cases.put("row with id=49: topk_ids is null", org.apache.spark.sql.RowFactory.create(49L, new float[0], null, new float[] {1f, 0f}));
    for (Map.Entry<String, Row> c : cases.entrySet()) {
      Dataset<Row> ds = ScoredData.of(spark, List.of(ScoredData.row(1, new int[] {0, 2}, new float[] {0.5f, 0.5f}), c.getValue()));
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RoutingStats.compute(ds, "id", 3, 10));
      assertEquals(c.getKey(), e.getMessage());
    }
  }

  @Test
  void schemaProblemsNameTheColumn() {
    Dataset<Row> ds = hand();
    assertTrue(assertThrows(IllegalArgumentException.class, () -> RoutingStats.compute(ds, "token", 0, 10)).getMessage()
        .startsWith("column token (the id column (--id-col)) not found; the input has: id, output, topk_ids, topk_weights"));
    assertEquals("column topk_weights: expected array<float>, got array<string>",
        assertThrows(IllegalArgumentException.class, () -> RoutingStats.compute(
            ds.selectExpr("id", "topk_ids", "transform(topk_weights, x -> CAST(x AS STRING)) AS topk_weights"), "id", 0, 10)).getMessage());
    assertEquals("column topk_ids: expected array<int>, got string",
        assertThrows(IllegalArgumentException.class, () -> RoutingStats.compute(
            ds.selectExpr("id", "'x' AS topk_ids", "topk_weights"), "id", 0, 10)).getMessage());
    assertEquals("bins: expected 1..1000, got 0",
        assertThrows(IllegalArgumentException.class, () -> RoutingStats.compute(ds, "id", 0, 0)).getMessage());
  }

  @Test
  void statsCommandWritesTablesAndReport() throws Exception {
    // A string id column under another name; bigint ids and double weights are accepted.
    String input = tmp.resolve("scored").toString();
    hand().selectExpr("concat('tok-', id) AS token", "output", "CAST(topk_ids AS array<bigint>) AS topk_ids",
        "CAST(topk_weights AS array<double>) AS topk_weights").coalesce(1).write().parquet(input);
    Path report = tmp.resolve("out/routing.html");
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc = Main.run(new String[] {"stats", "--input", input, "--report", report.toString(), "--experts", "4",
        "--id-col", "token", "--bins", "20"}, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    assertEquals(0, rc, err.toString(StandardCharsets.UTF_8));
    assertTrue(out.toString(StandardCharsets.UTF_8).contains("stats: 5 tokens, E = 4, K = 2, imbalance 1.778"), out.toString());

    String tables = tmp.resolve("out/routing-tables").toString();
    List<Row> load = spark.read().parquet(tables + "/expert_load").orderBy("expert").collectAsList();
    assertEquals(4, load.size());
    long[] tokens = load.stream().mapToLong(r -> r.getLong(1)).toArray();
    assertArrayEquals(new long[] {3, 4, 2, 0}, tokens);
    assertEquals(4.0 / 9, load.get(1).getDouble(2), 0.0);
    List<Row> co = spark.read().parquet(tables + "/coactivation").orderBy("expert_a", "expert_b").collectAsList();
    assertEquals("[[0,0,3], [0,1,2], [0,2,1], [1,0,2], [1,1,4], [1,2,1], [2,0,1], [2,1,1], [2,2,2]]", co.toString());
    assertEquals(20, spark.read().parquet(tables + "/token_entropy_histogram").count());
    assertEquals(40, spark.read().parquet(tables + "/topk_weight_histogram").count());
    assertEquals(5, spark.read().parquet(tables + "/topk_weight_histogram").where("rank = 1").groupBy().sum("count").first().getLong(0));
    Row imb = spark.read().parquet(tables + "/summary").where("metric = 'imbalance_max_over_mean'").first();
    assertEquals(4 / 2.25, imb.getDouble(1));
    List<Row> ent = spark.read().parquet(tables + "/token_entropy").orderBy("token").collectAsList();
    assertEquals("tok-0", ent.get(0).getString(0));
    assertEquals(Math.log(2), ent.get(0).getDouble(1), 1e-12);
    assertEquals(0.0, ent.get(1).getDouble(1));

    String html = Files.readString(report);
    assertSelfContained(html);
    assertTrue(html.contains("expert load bar chart"));
    assertTrue(html.contains("<title>expert 1: 4 tokens (44.4%)</title>"), "tooltip of the busiest expert");
  }

  @Test
  void largeExpertCountUsesARasterHeatMapAndStaysSmall() {
    RoutingStats s = RoutingStats.compute(ScoredData.of(spark, ScoredData.skewed(1500, 256, 8, 3)), "id", 256, 20);
    assertEquals(1500L * 8, s.assignments);
    for (int e = 0; e < 256; e++) {
      assertEquals(s.load[e], s.coactivation[e][e], "diagonal = load, expert " + e);
      for (int f = 0; f < 256; f++) {
        assertEquals(s.coactivation[e][f], s.coactivation[f][e], "symmetry " + e + "," + f);
      }
    }
    String html = RoutingReport.html(s, "E = 256", "synthetic");
    assertSelfContained(html);
    assertTrue(html.contains("href=\"data:image/png;base64,"), "raster heat map");
    assertTrue(html.length() < 600_000, "report size " + html.length());
  }

  @Test
  void pngEncoderWritesAValidImage() throws Exception {
    int[] rgb = {0xff0000, 0x00ff00, 0x0000ff, 0xffffff, 0x000000, 0x123456};
    java.awt.image.BufferedImage img = javax.imageio.ImageIO.read(new java.io.ByteArrayInputStream(RoutingReport.png(3, 2, rgb)));
    assertEquals(3, img.getWidth());
    assertEquals(2, img.getHeight());
    for (int i = 0; i < 6; i++) {
      assertEquals(rgb[i], img.getRGB(i % 3, i / 3) & 0xffffff, "pixel " + i);
    }
  }

  @Test
  void tickAndLabelHelpers() {
    assertArrayEquals(new double[] {0, 200, 400, 600, 800, 1000}, RoutingReport.niceTicks(0, 1000, 5));
    assertArrayEquals(new double[] {0, 1, 2, 3, 4}, RoutingReport.niceTicks(0, 4, 5));
    assertEquals(1, RoutingReport.labelStep(32, 32));
    assertEquals(8, RoutingReport.labelStep(256, 32));
    assertEquals("&lt;a href=&quot;x&quot;&gt; &amp;", RoutingReport.esc("<a href=\"x\"> &"));
    assertEquals(0xffffd9, RoutingReport.scale(0));
    assertEquals(0x081d58, RoutingReport.scale(1));
  }

  static void assertSelfContained(String html) {
    assertTrue(html.startsWith("<!DOCTYPE html>"));
    String lower = html.toLowerCase(java.util.Locale.ROOT);
    assertFalse(lower.contains("<script"), "no script");
    assertFalse(lower.contains("<link"), "no external style sheet");
    assertFalse(lower.contains("@import") || lower.contains("@font-face"), "no imported CSS or fonts");
    assertFalse(lower.contains(" src="), "no external resources");
    assertFalse(lower.replace("xmlns=\"http://www.w3.org/2000/svg\"", "").contains("http:")
        || lower.contains("https:"), "no URLs");
    assertFalse(lower.replace("url(#coact)", "").contains("url("), "no CSS url() other than the gradient");
  }
}
