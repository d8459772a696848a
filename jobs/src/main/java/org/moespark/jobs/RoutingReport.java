package org.moespark.jobs;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * Renders {@link RoutingStats} as one self-contained HTML page: inline CSS and inline SVG charts
 * (expert load bars, token entropy histogram, top-k weight histograms per rank, co-activation heat
 * map), tables; no script, no external file, font or style sheet. Heat maps of up to
 * {@value #VECTOR_HEATMAP_MAX} experts are drawn cell by cell (with tooltips); larger ones as a PNG
 * embedded in the SVG (a data URI, one pixel per cell, scaled without smoothing), which keeps the
 * page small for E = 256.
 */
public final class RoutingReport {
  /** Largest E whose heat map is drawn as SVG rectangles. */
  public static final int VECTOR_HEATMAP_MAX = 64;

  private static final String BAR = "#4c78a8";
  private static final String BAR_MAX = "#f58518";
  private static final String IDLE = "#e45756";
  private static final String AXIS = "#5b6270";
  private static final String GRID = "#e6e8ec";
  private static final String INK = "#1f2430";
  /** Sequential scale for the heat map (light yellow → green → blue → navy). */
  private static final int[] SCALE = {0xffffd9, 0xedf8b1, 0xc7e9b4, 0x7fcdbb, 0x41b6c4, 0x1d91c0, 0x225ea8, 0x253494, 0x081d58};
  private static final int ZERO_CELL = 0xf7f8fa;
  private static final int DIAGONAL_CELL = 0xbfc4cc;

  private RoutingReport() {}

  /**
   * The report page.
   *
   * @param s the statistics
   * @param title page title (escaped)
   * @param source description of the input, e.g. its path (escaped)
   */
  public static String html(RoutingStats s, String title, String source) {
    StringBuilder h = new StringBuilder(1 << 16);
    h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>").append(esc(title))
        .append("</title>\n<style>\n").append(CSS).append("</style></head>\n<body><main>\n");
    h.append("<header><h1>").append(esc(title)).append("</h1><p class=\"sub\">").append(esc(source))
        .append(" &middot; ").append(count(s.tokens)).append(" tokens &middot; E = ").append(s.experts)
        .append(" experts &middot; top-").append(s.topK).append("</p></header>\n");

    // Key figures.
    h.append("<section class=\"kpis\">\n");
    kpi(h, "Tokens", count(s.tokens), s.droppedSlots > 0 ? count(s.droppedSlots) + " dropped slots" : "no dropped slots");
    kpi(h, "Experts", Integer.toString(s.experts), s.idleExperts() == 0 ? "all used" : s.idleExperts() + " idle");
    kpi(h, "Imbalance", num(s.imbalance(), 3) + "&times;", "max load / mean load");
    kpi(h, "Load entropy", pct(s.loadEntropyNormalised()), num(s.loadEntropy(), 3) + " nats of ln E = " + num(Math.log(Math.max(1, s.experts)), 3));
    kpi(h, "Token entropy", num(s.entropyMean, 3), "mean nats, ln K = " + num(s.entropyHi, 3));
    kpi(h, "Top-1 weight", s.topK > 0 ? num(s.meanWeightByRank[0], 3) : "&ndash;", "mean largest weight");
    h.append("</section>\n");

    h.append("<section class=\"card\"><h2>Expert load</h2><p class=\"note\">Tokens routed to each expert "
        + "(non-dropped top-k slots). Dashed line: mean load; orange: the busiest expert; red ticks: idle experts.</p>\n");
    loadChart(h, s);
    h.append("</section>\n");

    h.append("<div class=\"row\"><section class=\"card half\"><h2>Token routing entropy</h2><p class=\"note\">Entropy of each "
        + "token's normalised top-k weights, in nats (0 = all weight on one expert, ln K = uniform). Dashed: mean.</p>\n");
    histogram(h, s.entropyHistogram, 0, s.entropyHi, 600, 300, "entropy (nats)", s.entropyMean, BAR);
    h.append("</section><section class=\"card half\"><h2>Entropy summary</h2>\n");
    table(h, new String[][] {
        {"tokens with an entropy", count(s.tokensWithEntropy)},
        {"mean / min / max", num(s.entropyMean, 4) + " / " + num(s.entropyMin, 4) + " / " + num(s.entropyMax, 4)},
        {"p50 / p90 / p99 (approx.)", num(s.entropyQuantiles[0], 4) + " / " + num(s.entropyQuantiles[1], 4) + " / " + num(s.entropyQuantiles[2], 4)},
        {"mean / ln K", pct(s.entropyMean / s.entropyHi)},
        {"global load entropy", num(s.loadEntropy(), 4) + " nats (" + pct(s.loadEntropyNormalised()) + " of ln E)"},
    });
    h.append("</section></div>\n");

    h.append("<section class=\"card\"><h2>Top-k routing weights by rank</h2><p class=\"note\">Distribution of each token's "
        + "k-th largest weight (rank 1 = largest), over [0, ").append(num(s.weightHi, 3)).append("]. Dashed: mean.</p>\n<div class=\"grid\">");
    for (int r = 0; r < s.topK; r++) {
      h.append("<figure><figcaption>rank ").append(r + 1).append("</figcaption>");
      histogram(h, s.weightHistogram[r], 0, s.weightHi, 300, 190, "weight", s.meanWeightByRank[r], r == 0 ? BAR_MAX : BAR);
      h.append("</figure>");
    }
    if (s.topK == 0) {
      h.append("<p class=\"note\">No tokens.</p>");
    }
    h.append("</div></section>\n");

    h.append("<div class=\"row\"><section class=\"card wide\"><h2>Expert co-activation</h2><p class=\"note\">Cell (a, b): "
        + "tokens whose top-k contains both experts a and b (colour on a square-root scale). Diagonal (grey): tokens per expert.</p>\n");
    heatMap(h, s);
    h.append("</section><section class=\"card narrow\"><h2>Most frequent pairs</h2>\n");
    topPairs(h, s, 12);
    h.append("</section></div>\n");

    h.append("<section class=\"card\"><h2>Summary</h2>\n");
    List<String[]> rows = new ArrayList<>();
    for (Map.Entry<String, Double> m : s.summary().entrySet()) {
      double v = m.getValue();
      rows.add(new String[] {m.getKey(), v == Math.rint(v) && Math.abs(v) < 1e15 ? count((long) v) : num(v, 6)});
    }
    table(h, rows.toArray(new String[0][]));
    h.append("</section>\n<footer>Generated by moespark <code>moe stats</code>. Tables with the same numbers are "
        + "written as Parquet next to this report.</footer>\n</main></body></html>\n");
    return h.toString();
  }

  private static final String CSS = String.join("\n",
      "*{box-sizing:border-box}",
      "body{margin:0;background:#f3f4f7;color:" + INK + ";font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif}",
      "main{max-width:1340px;margin:0 auto;padding:24px 28px 40px}",
      "header h1{margin:0 0 4px;font-size:26px;font-weight:650;letter-spacing:-.01em}",
      ".sub{margin:0 0 18px;color:#5b6270}",
      ".kpis{display:grid;grid-template-columns:repeat(6,1fr);gap:12px;margin-bottom:16px}",
      ".kpi{background:#fff;border-radius:10px;padding:12px 14px;box-shadow:0 1px 2px rgba(16,24,40,.08)}",
      ".kpi .label{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:#6b7280}",
      ".kpi .value{font-size:24px;font-weight:650;margin:2px 0}",
      ".kpi .hint{font-size:12px;color:#6b7280}",
      ".card{background:#fff;border-radius:10px;padding:16px 18px;margin-bottom:16px;box-shadow:0 1px 2px rgba(16,24,40,.08);overflow-x:auto}",
      ".card h2{margin:0 0 2px;font-size:17px;font-weight:620}",
      ".note{margin:0 0 10px;color:#6b7280;font-size:13px}",
      ".row{display:flex;gap:16px;align-items:stretch}",
      ".half{flex:1 1 50%}.wide{flex:1 1 auto}.narrow{flex:0 0 300px}",
      ".grid{display:flex;flex-wrap:wrap;gap:8px 14px}",
      "figure{margin:0}figcaption{font-size:12px;color:#6b7280;margin-left:44px}",
      "table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}",
      "td,th{padding:5px 8px;border-bottom:1px solid #eceef2;text-align:left}",
      "td:last-child,th:last-child{text-align:right}",
      "th{font-size:12px;color:#6b7280;font-weight:600;text-transform:uppercase;letter-spacing:.04em}",
      "svg{display:block;max-width:100%;height:auto}",
      "svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif}",
      "footer{color:#8a909c;font-size:12px;margin-top:8px}",
      "code{font-size:12px}",
      "");

  private static void kpi(StringBuilder h, String label, String value, String hint) {
    h.append("<div class=\"kpi\"><div class=\"label\">").append(label).append("</div><div class=\"value\">").append(value)
        .append("</div><div class=\"hint\">").append(hint).append("</div></div>\n");
  }

  private static void table(StringBuilder h, String[][] rows) {
    h.append("<table>");
    for (String[] r : rows) {
      h.append("<tr><td>").append(esc(r[0])).append("</td><td>").append(r[1]).append("</td></tr>");
    }
    h.append("</table>\n");
  }

  // ------------------------------------------------------------------------------------------------
  // Charts

  private static void loadChart(StringBuilder h, RoutingStats s) {
    int w = 1270;
    int ht = 330;
    int left = 64;
    int right = 16;
    int top = 14;
    int bottom = 44;
    double pw = w - left - right;
    double ph = ht - top - bottom;
    long max = 0;
    int argMax = -1;
    for (int e = 0; e < s.experts; e++) {
      if (s.load[e] > max) {
        max = s.load[e];
        argMax = e;
      }
    }
    double[] ticks = niceTicks(0, Math.max(1, max), 5);
    double yMax = ticks[ticks.length - 1];
    svgOpen(h, w, ht, "expert load bar chart");
    for (double t : ticks) {
      double y = top + ph - t / yMax * ph;
      line(h, left, y, w - right, y, GRID, 1, null);
      text(h, left - 8, y + 4, "end", 12, AXIS, count((long) t));
    }
    text(h, 16, top + ph / 2, "middle", 12, AXIS, "tokens", "rotate(-90 16 " + fmt(top + ph / 2) + ")");
    int e0 = s.experts;
    double slot = e0 == 0 ? pw : pw / e0;
    double gap = slot >= 6 ? Math.min(slot * 0.18, 6) : 0;
    for (int e = 0; e < e0; e++) {
      double bh = s.load[e] / yMax * ph;
      double x = left + e * slot + gap / 2;
      h.append("<rect x=\"").append(fmt(x)).append("\" y=\"").append(fmt(top + ph - bh)).append("\" width=\"")
          .append(fmt(Math.max(slot - gap, 0.6))).append("\" height=\"").append(fmt(bh)).append("\" fill=\"")
          .append(e == argMax ? BAR_MAX : BAR).append("\"><title>expert ").append(e).append(": ").append(count(s.load[e]))
          .append(" tokens (").append(pct(s.share(e))).append(")</title></rect>");
      if (s.load[e] == 0) {
        line(h, x + (slot - gap) / 2, top + ph + 1, x + (slot - gap) / 2, top + ph + 7, IDLE, Math.max(1.5, Math.min(slot - gap, 3)), null);
      }
    }
    line(h, left, top + ph, w - right, top + ph, AXIS, 1, null);
    int step = labelStep(e0, 32);
    for (int e = 0; e < e0; e += step) {
      double cx = left + (e + 0.5) * slot;
      line(h, cx, top + ph, cx, top + ph + 4, AXIS, 1, null);
      text(h, cx, top + ph + 18, "middle", 11, AXIS, Integer.toString(e));
    }
    text(h, left + pw / 2, ht - 6, "middle", 12, AXIS, "expert");
    if (s.assignments > 0) {
      double y = top + ph - s.meanLoad() / yMax * ph;
      line(h, left, y, w - right, y, INK, 1.2, "5 4");
      text(h, w - right - 4, y - 5, "end", 12, INK, "mean " + num(s.meanLoad(), 4));
    }
    h.append("</svg>\n");
  }

  private static void histogram(StringBuilder h, long[] counts, double lo, double hi, int w, int ht, String xLabel,
      double mean, String colour) {
    int left = 52;
    int right = 12;
    int top = 10;
    int bottom = 40;
    double pw = w - left - right;
    double ph = ht - top - bottom;
    long max = 1;
    for (long c : counts) {
      max = Math.max(max, c);
    }
    double[] yt = niceTicks(0, max, 4);
    double yMax = yt[yt.length - 1];
    svgOpen(h, w, ht, xLabel + " histogram");
    for (double t : yt) {
      double y = top + ph - t / yMax * ph;
      line(h, left, y, w - right, y, GRID, 1, null);
      text(h, left - 6, y + 4, "end", 11, AXIS, count((long) t));
    }
    int n = counts.length;
    double bw = pw / n;
    for (int b = 0; b < n; b++) {
      double bh = counts[b] / yMax * ph;
      h.append("<rect x=\"").append(fmt(left + b * bw + 0.5)).append("\" y=\"").append(fmt(top + ph - bh))
          .append("\" width=\"").append(fmt(Math.max(bw - 1, 0.5))).append("\" height=\"").append(fmt(bh))
          .append("\" fill=\"").append(colour).append("\"><title>[").append(num(lo + (hi - lo) * b / n, 4)).append(", ")
          .append(num(lo + (hi - lo) * (b + 1) / n, 4)).append(b == n - 1 ? "]" : ")").append(": ").append(count(counts[b]))
          .append("</title></rect>");
    }
    line(h, left, top + ph, w - right, top + ph, AXIS, 1, null);
    double[] xt = niceTicks(lo, hi, w >= 500 ? 6 : 4);
    for (double t : xt) {
      if (t > hi + 1e-12) {
        continue;
      }
      double x = left + (t - lo) / (hi - lo) * pw;
      line(h, x, top + ph, x, top + ph + 4, AXIS, 1, null);
      text(h, x, top + ph + 16, "middle", 11, AXIS, num(t, 3));
    }
    text(h, left + pw / 2, ht - 5, "middle", 11, AXIS, xLabel);
    if (Double.isFinite(mean)) {
      double x = left + (mean - lo) / (hi - lo) * pw;
      line(h, x, top, x, top + ph, INK, 1.2, "5 4");
    }
    h.append("</svg>\n");
  }

  private static void heatMap(StringBuilder h, RoutingStats s) {
    int e0 = s.experts;
    if (e0 == 0) {
      h.append("<p class=\"note\">No experts.</p>");
      return;
    }
    long maxOff = 0;
    for (int a = 0; a < e0; a++) {
      for (int b = 0; b < e0; b++) {
        if (a != b) {
          maxOff = Math.max(maxOff, s.coactivation[a][b]);
        }
      }
    }
    int cell = Math.max(1, Math.min(24, 768 / e0));
    int size = cell * e0;
    int left = 44;
    int top = 10;
    int legend = 110;
    int w = left + size + legend;
    int ht = top + size + 44;
    svgOpen(h, w, ht, "co-activation heat map");
    if (e0 <= VECTOR_HEATMAP_MAX) {
      for (int a = 0; a < e0; a++) {
        for (int b = 0; b < e0; b++) {
          long c = s.coactivation[a][b];
          h.append("<rect x=\"").append(left + b * cell).append("\" y=\"").append(top + a * cell).append("\" width=\"")
              .append(cell).append("\" height=\"").append(cell).append("\" fill=\"").append(hex(cellColour(a, b, c, maxOff)))
              .append("\"><title>").append(a).append(" &amp; ").append(b).append(": ").append(count(c)).append(a == b ? " tokens" : " tokens together")
              .append("</title></rect>");
        }
      }
    } else {
      int[] rgb = new int[e0 * e0];
      for (int a = 0; a < e0; a++) {
        for (int b = 0; b < e0; b++) {
          rgb[a * e0 + b] = cellColour(a, b, s.coactivation[a][b], maxOff);
        }
      }
      h.append("<image x=\"").append(left).append("\" y=\"").append(top).append("\" width=\"").append(size)
          .append("\" height=\"").append(size).append("\" preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"data:image/png;base64,")
          .append(Base64.getEncoder().encodeToString(png(e0, e0, rgb))).append("\"/>");
    }
    h.append("<rect x=\"").append(left).append("\" y=\"").append(top).append("\" width=\"").append(size).append("\" height=\"")
        .append(size).append("\" fill=\"none\" stroke=\"").append(AXIS).append("\" stroke-width=\"1\"/>");
    int step = labelStep(e0, 16);
    for (int e = 0; e < e0; e += step) {
      double c = e * cell + cell / 2.0;
      text(h, left - 6, top + c + 4, "end", 11, AXIS, Integer.toString(e));
      text(h, left + c, top + size + 16, "middle", 11, AXIS, Integer.toString(e));
    }
    text(h, left + size / 2.0, top + size + 36, "middle", 12, AXIS, "expert b  (rows: expert a)");
    // Colour legend.
    int lx = left + size + 28;
    int lh = Math.min(size, 260);
    h.append("<defs><linearGradient id=\"coact\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">");
    for (int i = 0; i < SCALE.length; i++) {
      h.append("<stop offset=\"").append(fmt((double) i / (SCALE.length - 1))).append("\" stop-color=\"").append(hex(SCALE[i]))
          .append("\"/>");
    }
    h.append("</linearGradient></defs>");
    h.append("<rect x=\"").append(lx).append("\" y=\"").append(top).append("\" width=\"14\" height=\"").append(lh)
        .append("\" fill=\"url(#coact)\" stroke=\"").append(GRID).append("\"/>");
    for (double t : new double[] {0, 0.25, 0.5, 0.75, 1}) {
      double y = top + lh - t * lh;
      line(h, lx + 14, y, lx + 18, y, AXIS, 1, null);
      text(h, lx + 21, y + 4, "start", 11, AXIS, count(Math.round(t * t * maxOff)));
    }
    h.append("</svg>\n");
  }

  private static int cellColour(int a, int b, long c, long maxOff) {
    if (a == b) {
      return DIAGONAL_CELL;
    }
    if (c == 0 || maxOff == 0) {
      return ZERO_CELL;
    }
    return scale(Math.sqrt((double) c / maxOff));
  }

  private static void topPairs(StringBuilder h, RoutingStats s, int n) {
    List<long[]> pairs = new ArrayList<>();
    for (int a = 0; a < s.experts; a++) {
      for (int b = a + 1; b < s.experts; b++) {
        if (s.coactivation[a][b] > 0) {
          pairs.add(new long[] {a, b, s.coactivation[a][b]});
        }
      }
    }
    // Most frequent first; ties to the lower (a, b).
    pairs.sort((x, y) -> x[2] != y[2] ? Long.compare(y[2], x[2]) : x[0] != y[0] ? Long.compare(x[0], y[0]) : Long.compare(x[1], y[1]));
    if (pairs.isEmpty()) {
      h.append("<p class=\"note\">No token has two experts.</p>");
      return;
    }
    h.append("<table><tr><th>experts</th><th>tokens</th><th>of all</th></tr>");
    for (int i = 0; i < Math.min(n, pairs.size()); i++) {
      long[] p = pairs.get(i);
      h.append("<tr><td>").append(p[0]).append(" &amp; ").append(p[1]).append("</td><td>").append(count(p[2]))
          .append("</td><td>").append(pct((double) p[2] / s.tokens)).append("</td></tr>");
    }
    h.append("</table>\n");
  }

  // ------------------------------------------------------------------------------------------------
  // Small helpers

  private static void svgOpen(StringBuilder h, int w, int ht, String label) {
    h.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"").append(w).append("\" height=\"").append(ht)
        .append("\" viewBox=\"0 0 ").append(w).append(' ').append(ht).append("\" role=\"img\" aria-label=\"")
        .append(esc(label)).append("\">");
  }

  private static void line(StringBuilder h, double x1, double y1, double x2, double y2, String colour, double width, String dash) {
    h.append("<line x1=\"").append(fmt(x1)).append("\" y1=\"").append(fmt(y1)).append("\" x2=\"").append(fmt(x2))
        .append("\" y2=\"").append(fmt(y2)).append("\" stroke=\"").append(colour).append("\" stroke-width=\"").append(fmt(width))
        .append('"');
    if (dash != null) {
      h.append(" stroke-dasharray=\"").append(dash).append('"');
    }
    h.append("/>");
  }

  private static void text(StringBuilder h, double x, double y, String anchor, int size, String colour, String s) {
    text(h, x, y, anchor, size, colour, s, null);
  }

  private static void text(StringBuilder h, double x, double y, String anchor, int size, String colour, String s, String transform) {
    h.append("<text x=\"").append(fmt(x)).append("\" y=\"").append(fmt(y)).append("\" text-anchor=\"").append(anchor)
        .append("\" font-size=\"").append(size).append("\" fill=\"").append(colour).append('"');
    if (transform != null) {
      h.append(" transform=\"").append(transform).append('"');
    }
    h.append('>').append(esc(s)).append("</text>");
  }

  /** Tick values from lo covering hi with about {@code n} steps of 1, 2 or 5 × 10^k. */
  static double[] niceTicks(double lo, double hi, int n) {
    double range = hi - lo;
    if (!(range > 0)) {
      return new double[] {lo, lo + 1};
    }
    double raw = range / n;
    double mag = Math.pow(10, Math.floor(Math.log10(raw)));
    double step = mag;
    for (double m : new double[] {1, 2, 2.5, 5, 10}) {
      if (m * mag >= raw) {
        step = m * mag;
        break;
      }
    }
    if (lo == 0 && range >= n && step < 1) {
      step = 1;
    }
    int count = (int) Math.ceil(range / step - 1e-9);
    double[] t = new double[count + 1];
    for (int i = 0; i <= count; i++) {
      t[i] = lo + i * step;
    }
    return t;
  }

  /** Label every step-th of n items so that at most {@code most} labels appear (step 1, 2, 4, 5, 8, 10, 16, …). */
  static int labelStep(int n, int most) {
    for (int step : new int[] {1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 128, 256, 512, 1024}) {
      if ((n + step - 1) / step <= most) {
        return step;
      }
    }
    return Math.max(1, n / most);
  }

  static int scale(double t) {
    t = Math.max(0, Math.min(1, t)) * (SCALE.length - 1);
    int i = Math.min((int) t, SCALE.length - 2);
    double f = t - i;
    int a = SCALE[i];
    int b = SCALE[i + 1];
    int r = (int) Math.round(((a >> 16) & 255) * (1 - f) + ((b >> 16) & 255) * f);
    int g = (int) Math.round(((a >> 8) & 255) * (1 - f) + ((b >> 8) & 255) * f);
    int bl = (int) Math.round((a & 255) * (1 - f) + (b & 255) * f);
    return (r << 16) | (g << 8) | bl;
  }

  private static String hex(int rgb) {
    return String.format(Locale.ROOT, "#%06x", rgb & 0xffffff);
  }

  /** A minimal 8-bit RGB PNG (no filtering). */
  static byte[] png(int width, int height, int[] rgb) {
    byte[] raw = new byte[height * (1 + 3 * width)];
    int o = 0;
    for (int y = 0; y < height; y++) {
      raw[o++] = 0;
      for (int x = 0; x < width; x++) {
        int c = rgb[y * width + x];
        raw[o++] = (byte) (c >> 16);
        raw[o++] = (byte) (c >> 8);
        raw[o++] = (byte) c;
      }
    }
    Deflater d = new Deflater(Deflater.BEST_COMPRESSION);
    d.setInput(raw);
    d.finish();
    ByteArrayOutputStream z = new ByteArrayOutputStream();
    byte[] buf = new byte[8192];
    while (!d.finished()) {
      z.write(buf, 0, d.deflate(buf));
    }
    d.end();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
    chunk(out, "IHDR", ByteBuffer.allocate(13).putInt(width).putInt(height).put((byte) 8).put((byte) 2)
        .put((byte) 0).put((byte) 0).put((byte) 0).array());
    chunk(out, "IDAT", z.toByteArray());
    chunk(out, "IEND", new byte[0]);
    return out.toByteArray();
  }

  private static void chunk(ByteArrayOutputStream out, String type, byte[] data) {
    byte[] t = type.getBytes(StandardCharsets.US_ASCII);
    out.writeBytes(ByteBuffer.allocate(4).putInt(data.length).array());
    out.writeBytes(t);
    out.writeBytes(data);
    CRC32 crc = new CRC32();
    crc.update(t);
    crc.update(data);
    out.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
  }

  static String esc(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '<': b.append("&lt;"); break;
        case '>': b.append("&gt;"); break;
        case '&': b.append("&amp;"); break;
        case '"': b.append("&quot;"); break;
        case '\'': b.append("&#39;"); break;
        default: b.append(c);
      }
    }
    return b.toString();
  }

  private static String fmt(double v) {
    if (v == Math.rint(v) && Math.abs(v) < 1e9) {
      return Long.toString((long) v);
    }
    return String.format(Locale.ROOT, "%.2f", v);
  }

  static String count(long v) {
    return String.format(Locale.ROOT, "%,d", v);
  }

  static String num(double v, int sig) {
    if (!Double.isFinite(v)) {
      return Double.isNaN(v) ? "&ndash;" : (v > 0 ? "&infin;" : "&minus;&infin;");
    }
    if (v == 0) {
      return "0";
    }
    String s = new java.math.BigDecimal(v).round(new java.math.MathContext(sig)).stripTrailingZeros().toPlainString();
    return s;
  }

  static String pct(double v) {
    if (!Double.isFinite(v)) {
      return "&ndash;";
    }
    return String.format(Locale.ROOT, "%.1f%%", 100 * v);
  }
}
