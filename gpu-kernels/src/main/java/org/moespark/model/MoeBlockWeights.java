package org.moespark.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The weights of one MoE block, in one canonical form whatever the checkpoint layout
 * (models-and-formats.md §2): router {@code [E, H]}; per expert {@code gate} and {@code up}
 * {@code [I, H]} and {@code down} {@code [H, I]} (nn.Linear {@code [out, in]}), each a
 * {@link WeightTensor} in the file's number format, plus biases for GPT-OSS; the shared expert
 * (Qwen2-MoE {@code shared_expert} with {@code shared_expert_gate [1, H]}, DeepSeek-V3
 * {@code shared_experts} of width {@code I × n_shared_experts}); GPT-OSS's router bias and
 * DeepSeek-V3's selection-only {@code e_score_correction_bias}.
 *
 * <p>Layouts read (detected from the tensor names, under {@code model.layers.{L}.mlp.}, or for
 * Mixtral {@code model.layers.{L}.block_sparse_moe.} first):
 * <ul>
 *   <li>{@link Layout#PER_EXPERT} — every hub checkpoint: {@code experts.{e}.gate_proj/up_proj/
 *       down_proj.weight} (Mixtral {@code w1/w3/w2}); F32/F16/BF16, block FP8 with
 *       {@code weight_scale_inv}, or NVFP4 {@code weight}(U8)/{@code weight_scale}/
 *       {@code weight_scale_2}[/{@code input_scale}]. Zero-copy views of the mapped files.
 *   <li>{@link Layout#FUSED} — transformers v5 {@code experts.gate_up_proj [E, 2I, H]} (gate rows
 *       first, then up) and {@code experts.down_proj [E, H, I]}; F32/F16/BF16. Zero-copy slices.
 *   <li>{@link Layout#GPT_OSS} — {@code experts.gate_up_proj [E, H, 2I]} (transposed, gate/up
 *       interleaved in the last dim: even = gate, odd = up), {@code gate_up_proj_bias [E, 2I]},
 *       {@code down_proj [E, I, H]} (transposed), {@code down_proj_bias [E, H]}; or MXFP4
 *       {@code *_blocks [E, out, in/32, 16]} + {@code *_scales [E, out, in/32]} (out-major, rows of
 *       gate_up interleaved). The de-interleaved/transposed gate, up and down (and the two
 *       biases) are <b>materialized copies</b> in the same number format (raw bytes moved, no
 *       rounding); the MXFP4 down projection and down bias are zero-copy.
 * </ul>
 * Every tensor's dtype and shape are checked against the config; a mismatch names the tensor,
 * the expected shape (with the meaning of each dim) and what the file has.
 */
public final class MoeBlockWeights {

  /** How the experts were stored. */
  public enum Layout {
    PER_EXPERT,
    FUSED,
    GPT_OSS
  }

  /** One expert MLP in canonical orientation: gate/up {@code [I, H]}, down {@code [H, I]}; biases {@code [1, n]} or null. */
  public static final class Expert {
    private final WeightTensor gate;
    private final WeightTensor up;
    private final WeightTensor down;
    private final WeightTensor gateBias;
    private final WeightTensor upBias;
    private final WeightTensor downBias;

    public Expert(WeightTensor gate, WeightTensor up, WeightTensor down, WeightTensor gateBias, WeightTensor upBias,
        WeightTensor downBias) {
      if (gate == null || up == null || down == null) {
        throw new IllegalArgumentException("expert gate, up and down must not be null");
      }
      if (up.rows() != gate.rows() || up.cols() != gate.cols() || down.rows() != gate.cols() || down.cols() != gate.rows()) {
        throw new IllegalArgumentException("expert shapes disagree: gate " + gate + ", up " + up + ", down " + down
            + " (want gate/up [I, H], down [H, I])");
      }
      this.gate = gate;
      this.up = up;
      this.down = down;
      this.gateBias = gateBias;
      this.upBias = upBias;
      this.downBias = downBias;
    }

    /** W_gate {@code [I, H]}. */
    public WeightTensor gate() {
      return gate;
    }

    /** W_up {@code [I, H]}. */
    public WeightTensor up() {
      return up;
    }

    /** W_down {@code [H, I]}. */
    public WeightTensor down() {
      return down;
    }

    /** {@code [1, I]} or null. */
    public WeightTensor gateBias() {
      return gateBias;
    }

    /** {@code [1, I]} or null. */
    public WeightTensor upBias() {
      return upBias;
    }

    /** {@code [1, H]} or null. */
    public WeightTensor downBias() {
      return downBias;
    }

    /** I. */
    public int intermediateSize() {
      return gate.rows();
    }

    /** H. */
    public int hiddenSize() {
      return gate.cols();
    }
  }

  private final MoeConfig config;
  private final int layer;
  private final String prefix;
  private final Layout layout;
  private final WeightTensor router;
  private final WeightTensor routerBias;
  private final WeightTensor scoreCorrectionBias;
  private final List<Expert> experts;
  private final Expert sharedExpert;
  private final WeightTensor sharedExpertGate;

  private MoeBlockWeights(MoeConfig config, int layer, String prefix, Layout layout, WeightTensor router,
      WeightTensor routerBias, WeightTensor scoreCorrectionBias, List<Expert> experts, Expert sharedExpert,
      WeightTensor sharedExpertGate) {
    this.config = config;
    this.layer = layer;
    this.prefix = prefix;
    this.layout = layout;
    this.router = router;
    this.routerBias = routerBias;
    this.scoreCorrectionBias = scoreCorrectionBias;
    this.experts = Collections.unmodifiableList(new ArrayList<>(experts));
    this.sharedExpert = sharedExpert;
    this.sharedExpertGate = sharedExpertGate;
  }

  public MoeConfig config() {
    return config;
  }

  public int layer() {
    return layer;
  }

  /** Tensor-name prefix of the block, e.g. {@code model.layers.3.mlp.}. */
  public String prefix() {
    return prefix;
  }

  public Layout layout() {
    return layout;
  }

  /** Router weight {@code [E, H]}. */
  public WeightTensor router() {
    return router;
  }

  /** GPT-OSS router bias {@code [1, E]}, else null. */
  public WeightTensor routerBias() {
    return routerBias;
  }

  /** DeepSeek-V3 {@code e_score_correction_bias} {@code [1, E]} (selection only), else null. */
  public WeightTensor scoreCorrectionBias() {
    return scoreCorrectionBias;
  }

  /** The E routed experts, by expert id. */
  public List<Expert> experts() {
    return experts;
  }

  public Expert expert(int e) {
    if (e < 0 || e >= experts.size()) {
      throw new IndexOutOfBoundsException("expert " + e + " outside [0, " + experts.size() + ")");
    }
    return experts.get(e);
  }

  /** The shared expert MLP (Qwen2-MoE, DeepSeek-V3), else null. */
  public Expert sharedExpert() {
    return sharedExpert;
  }

  /** Qwen2-MoE {@code shared_expert_gate} {@code [1, H]}, else null. */
  public WeightTensor sharedExpertGate() {
    return sharedExpertGate;
  }

  // ------------------------------------------------------------------------------------------
  // loading

  /**
   * Loads the MoE block of decoder layer {@code layer}. Fails with an
   * {@link IllegalArgumentException} when the layer is dense or out of range, and with a
   * {@link SafeTensorsException} when a tensor is missing or has the wrong dtype/shape.
   */
  public static MoeBlockWeights load(Checkpoint ckpt, MoeConfig cfg, int layer) {
    if (ckpt == null || cfg == null) {
      throw new IllegalArgumentException("checkpoint and config must not be null");
    }
    cfg.requireMoeLayer(layer);
    return new Loader(ckpt, cfg, layer).load();
  }

  private static final class Loader {
    final Checkpoint ckpt;
    final MoeConfig cfg;
    final int layer;
    final int h;
    final int e;
    final int i;
    String prefix;

    Loader(Checkpoint ckpt, MoeConfig cfg, int layer) {
      this.ckpt = ckpt;
      this.cfg = cfg;
      this.layer = layer;
      this.h = cfg.hiddenSize();
      this.e = cfg.numExperts();
      this.i = cfg.expertIntermediateSize();
    }

    SafeTensorsException bad(String tensor, String msg) {
      return new SafeTensorsException("layer " + layer + " of " + cfg.modelType() + ", tensor '" + tensor + "' in "
          + ckpt.dir() + ": " + msg);
    }

    MoeBlockWeights load() {
      String base = "model.layers." + layer + ".";
      List<String> prefixes = cfg.family() == MoeConfig.Family.MIXTRAL
          ? List.of(base + "block_sparse_moe.", base + "mlp.") : List.of(base + "mlp.");
      String routerName = cfg.family() == MoeConfig.Family.GPT_OSS ? "router.weight" : "gate.weight";
      List<String> tried = new ArrayList<>();
      for (String p : prefixes) {
        tried.add(p + routerName);
        if (ckpt.contains(p + routerName)) {
          prefix = p;
          break;
        }
      }
      if (prefix == null) {
        throw new SafeTensorsException("layer " + layer + " of " + cfg.modelType() + ": no router weight in checkpoint "
            + ckpt.dir() + " (looked for " + tried + " in " + ckpt.files() + ")");
      }
      WeightTensor router = linear(prefix + routerName.substring(0, routerName.length() - ".weight".length()), e, h,
          "E", "H");
      WeightTensor routerBias = null;
      WeightTensor scoreBias = null;
      if (cfg.routerHasBias()) {
        routerBias = vector(prefix + "router.bias", e, "E");
      }
      if (cfg.hasScoreCorrectionBias()) {
        scoreBias = vector(prefix + "gate.e_score_correction_bias", e, "E");
      }
      Layout layout;
      List<Expert> experts;
      if (cfg.family() == MoeConfig.Family.GPT_OSS) {
        layout = Layout.GPT_OSS;
        experts = gptOss();
      } else if (ckpt.contains(prefix + "experts.gate_up_proj")) {
        layout = Layout.FUSED;
        experts = fused();
      } else {
        layout = Layout.PER_EXPERT;
        experts = perExpert();
      }
      Expert shared = null;
      WeightTensor sharedGate = null;
      if (cfg.family() == MoeConfig.Family.QWEN2_MOE) {
        shared = mlp(prefix + "shared_expert.", "gate_proj", "up_proj", "down_proj", cfg.sharedExpertIntermediateSize(),
            "I_shared");
        sharedGate = linear(prefix + "shared_expert_gate", 1, h, "1", "H");
      } else if (cfg.family() == MoeConfig.Family.DEEPSEEK_V3 && cfg.numSharedExperts() > 0) {
        shared = mlp(prefix + "shared_experts.", "gate_proj", "up_proj", "down_proj",
            cfg.sharedExpertIntermediateSize(), "I*n_shared_experts");
      }
      return new MoeBlockWeights(cfg, layer, prefix, layout, router, routerBias, scoreBias, experts, shared, sharedGate);
    }

    Tensor tensor(String name) {
      return ckpt.tensor(name);
    }

    String shapeText(long[] dims, String[] meaning) {
      StringBuilder sb = new StringBuilder("[");
      for (int k = 0; k < dims.length; k++) {
        if (k > 0) {
          sb.append(", ");
        }
        sb.append(meaning[k]).append('=').append(dims[k]);
      }
      return sb.append(']').toString();
    }

    void checkShape(Tensor t, long[] dims, String... meaning) {
      if (!t.hasShape(dims)) {
        throw bad(t.name(), "expected shape " + shapeText(dims, meaning) + ", got " + Arrays.toString(t.shape()));
      }
    }

    WeightTensor.Format floatFormat(Tensor t) {
      WeightTensor.Format f = WeightTensor.Format.ofFloat(t.dtype());
      if (f == null) {
        throw bad(t.name(), "dtype " + t.dtype() + " is not F32, F16 or BF16");
      }
      return f;
    }

    /** A bias or other vector of length n, as [1, n]. */
    WeightTensor vector(String name, int n, String meaning) {
      Tensor t = tensor(name);
      checkShape(t, new long[] {n}, meaning);
      return WeightTensor.dense(name, floatFormat(t), 1, n, t.data());
    }

    /** A 2-D nn.Linear weight {@code base.weight [rows, cols]} in any supported number format. */
    WeightTensor linear(String base, int rows, int cols, String rowMeaning, String colMeaning) {
      String wName = base + ".weight";
      Tensor w = tensor(wName);
      switch (w.dtype()) {
        case F32:
        case F16:
        case BF16:
          checkShape(w, new long[] {rows, cols}, rowMeaning, colMeaning);
          return WeightTensor.dense(wName, floatFormat(w), rows, cols, w.data());
        case F8_E4M3: {
          checkShape(w, new long[] {rows, cols}, rowMeaning, colMeaning);
          String sName = base + ".weight_scale_inv";
          if (!ckpt.contains(sName)) {
            throw bad(wName, "FP8 E4M3 weight without its block scales '" + sName + "'");
          }
          Tensor s = tensor(sName);
          MoeConfig.Quantization q = cfg.quantization();
          int br = q.method() == MoeConfig.QuantMethod.FP8_BLOCK ? q.blockRows() : 128;
          int bc = q.method() == MoeConfig.QuantMethod.FP8_BLOCK ? q.blockCols() : 128;
          if (s.dtype() != DType.F32 && s.dtype() != DType.F8_E8M0) {
            throw bad(sName, "block scales must be F32 or F8_E8M0, got " + s.dtype());
          }
          checkShape(s, new long[] {WeightTensor.ceilDiv(rows, br), WeightTensor.ceilDiv(cols, bc)},
              "ceil(" + rowMeaning + "/" + br + ")", "ceil(" + colMeaning + "/" + bc + ")");
          return WeightTensor.fp8Block(wName, rows, cols, w.data(), s.data(), s.dtype(), br, bc);
        }
        case U8: {
          String sName = base + ".weight_scale";
          String s2Name = base + ".weight_scale_2";
          if (!ckpt.contains(sName) || !ckpt.contains(s2Name)) {
            throw bad(wName, "U8 weight is read as NVFP4, which needs '" + sName + "' and '" + s2Name + "'");
          }
          if (cols % 16 != 0) {
            throw bad(wName, "NVFP4 needs " + colMeaning + " % 16 == 0, got " + cols);
          }
          checkShape(w, new long[] {rows, cols / 2}, rowMeaning, colMeaning + "/2");
          Tensor s = tensor(sName);
          if (s.dtype() != DType.F8_E4M3) {
            throw bad(sName, "NVFP4 block scales must be F8_E4M3, got " + s.dtype());
          }
          checkShape(s, new long[] {rows, cols / 16}, rowMeaning, colMeaning + "/16");
          float global = scalar(s2Name);
          float input = ckpt.contains(base + ".input_scale") ? scalar(base + ".input_scale") : Float.NaN;
          if (!(global > 0) || Float.isInfinite(global)) {
            throw bad(s2Name, "weight_scale_2 must be positive and finite, got " + global);
          }
          return WeightTensor.nvfp4(wName, rows, cols, w.data(), s.data(), global, input);
        }
        default:
          throw bad(wName, "dtype " + w.dtype() + " is not supported for a linear weight (F32/F16/BF16, F8_E4M3 with"
              + " weight_scale_inv, or U8 NVFP4)");
      }
    }

    float scalar(String name) {
      Tensor t = tensor(name);
      if (t.dtype() != DType.F32) {
        throw bad(name, "must be an F32 scalar, got dtype " + t.dtype());
      }
      if (t.numel() != 1 || t.rank() > 1) {
        throw bad(name, "must be a scalar ([] or [1]), got shape " + Arrays.toString(t.shape()));
      }
      return t.data().getFloat(0);
    }

    Expert mlp(String p, String gate, String up, String down, int width, String widthName) {
      return new Expert(linear(p + gate, width, h, widthName, "H"), linear(p + up, width, h, widthName, "H"),
          linear(p + down, h, width, "H", widthName), null, null, null);
    }

    List<Expert> perExpert() {
      boolean mixtral = cfg.family() == MoeConfig.Family.MIXTRAL;
      String g = mixtral ? "w1" : "gate_proj";
      String u = mixtral ? "w3" : "up_proj";
      String d = mixtral ? "w2" : "down_proj";
      String first = prefix + "experts.0." + g + ".weight";
      if (!ckpt.contains(first)) {
        throw new SafeTensorsException("layer " + layer + " of " + cfg.modelType() + ": no experts in checkpoint "
            + ckpt.dir() + " (looked for per-expert '" + first + "' and fused '" + prefix + "experts.gate_up_proj' in "
            + ckpt.files() + ")");
      }
      String extra = prefix + "experts." + e + "." + g + ".weight";
      if (ckpt.contains(extra)) {
        throw bad(extra, "the checkpoint has more experts than the config's " + e);
      }
      List<Expert> out = new ArrayList<>(e);
      for (int x = 0; x < e; x++) {
        out.add(mlp(prefix + "experts." + x + ".", g, u, d, i, "I"));
      }
      return out;
    }

    List<Expert> fused() {
      String guName = prefix + "experts.gate_up_proj";
      String dName = prefix + "experts.down_proj";
      Tensor gu = tensor(guName);
      Tensor dn = tensor(dName);
      WeightTensor.Format f = floatFormat(gu);
      if (dn.dtype() != gu.dtype()) {
        throw bad(dName, "dtype " + dn.dtype() + " differs from " + guName + "'s " + gu.dtype());
      }
      checkShape(gu, new long[] {e, 2L * i, h}, "E", "2I", "H");
      checkShape(dn, new long[] {e, h, i}, "E", "H", "I");
      long s = f.bits() / 8;
      long mat = (long) i * h * s;
      if (mat > Integer.MAX_VALUE) {
        throw bad(guName, "one expert matrix of " + mat + " bytes exceeds 2^31 - 1");
      }
      List<Expert> out = new ArrayList<>(e);
      for (int x = 0; x < e; x++) {
        WeightTensor gate = WeightTensor.dense(guName + "[" + x + "][0:I]", f, i, h, gu.data(2 * x * mat, (int) mat));
        WeightTensor up = WeightTensor.dense(guName + "[" + x + "][I:2I]", f, i, h, gu.data(2 * x * mat + mat, (int) mat));
        WeightTensor down = WeightTensor.dense(dName + "[" + x + "]", f, h, i, dn.data(x * mat, (int) mat));
        out.add(new Expert(gate, up, down, null, null, null));
      }
      return out;
    }

    List<Expert> gptOss() {
      String p = prefix + "experts.";
      List<Expert> out = new ArrayList<>(e);
      // biases: gate_up_proj_bias [E, 2I] interleaved, down_proj_bias [E, H]
      Tensor gub = tensor(p + "gate_up_proj_bias");
      Tensor db = tensor(p + "down_proj_bias");
      WeightTensor.Format bf = floatFormat(gub);
      if (db.dtype() != gub.dtype()) {
        throw bad(db.name(), "dtype " + db.dtype() + " differs from " + gub.name() + "'s " + gub.dtype());
      }
      checkShape(gub, new long[] {e, 2L * i}, "E", "2I");
      checkShape(db, new long[] {e, h}, "E", "H");
      int bs = bf.bits() / 8;
      boolean mx = ckpt.contains(p + "gate_up_proj_blocks");
      Tensor gu = null;
      Tensor dn = null;
      Tensor guBlocks = null;
      Tensor guScales = null;
      Tensor dBlocks = null;
      Tensor dScales = null;
      WeightTensor.Format wf = null;
      if (mx) {
        if (h % 32 != 0 || i % 32 != 0) {
          throw bad(p + "gate_up_proj_blocks", "MXFP4 needs H and I divisible by 32, got H=" + h + ", I=" + i);
        }
        guBlocks = u8(p + "gate_up_proj_blocks", new long[] {e, 2L * i, h / 32, 16}, "E", "2I", "H/32", "16");
        guScales = u8(p + "gate_up_proj_scales", new long[] {e, 2L * i, h / 32}, "E", "2I", "H/32");
        dBlocks = u8(p + "down_proj_blocks", new long[] {e, h, i / 32, 16}, "E", "H", "I/32", "16");
        dScales = u8(p + "down_proj_scales", new long[] {e, h, i / 32}, "E", "H", "I/32");
      } else {
        gu = tensor(p + "gate_up_proj");
        dn = tensor(p + "down_proj");
        wf = floatFormat(gu);
        if (dn.dtype() != gu.dtype()) {
          throw bad(dn.name(), "dtype " + dn.dtype() + " differs from " + gu.name() + "'s " + gu.dtype());
        }
        checkShape(gu, new long[] {e, h, 2L * i}, "E", "H", "2I");
        checkShape(dn, new long[] {e, i, h}, "E", "I", "H");
      }
      for (int x = 0; x < e; x++) {
        ByteBuffer guBias = gub.data((long) x * 2 * i * bs, 2 * i * bs);
        WeightTensor gateBias = WeightTensor.dense(gub.name() + "[" + x + "][0::2]", bf, 1, i,
            everyOther(guBias, 0, i, bs));
        WeightTensor upBias = WeightTensor.dense(gub.name() + "[" + x + "][1::2]", bf, 1, i,
            everyOther(guBias, 1, i, bs));
        WeightTensor downBias = WeightTensor.dense(db.name() + "[" + x + "]", bf, 1, h,
            db.data((long) x * h * bs, h * bs));
        WeightTensor gate;
        WeightTensor up;
        WeightTensor down;
        if (mx) {
          int rowBytes = h / 2;
          int rowScales = h / 32;
          ByteBuffer blk = guBlocks.data((long) x * 2 * i * rowBytes, 2 * i * rowBytes);
          ByteBuffer scl = guScales.data((long) x * 2 * i * rowScales, 2 * i * rowScales);
          gate = WeightTensor.mxfp4(guBlocks.name() + "[" + x + "][0::2]", i, h, everyOther(blk, 0, i, rowBytes),
              everyOther(scl, 0, i, rowScales));
          up = WeightTensor.mxfp4(guBlocks.name() + "[" + x + "][1::2]", i, h, everyOther(blk, 1, i, rowBytes),
              everyOther(scl, 1, i, rowScales));
          long dRow = i / 2;
          long dScl = i / 32;
          down = WeightTensor.mxfp4(dBlocks.name() + "[" + x + "]", h, i,
              dBlocks.data((long) x * h * dRow, (int) (h * dRow)), dScales.data((long) x * h * dScl, (int) (h * dScl)));
        } else {
          int s = wf.bits() / 8;
          // gate_up_proj[x] is [H, 2I]: row hh holds g0,u0,g1,u1,...; gate[ii][hh] = W[hh][2ii], up = W[hh][2ii+1]
          ByteBuffer w = gu.data((long) x * h * 2 * i * s, h * 2 * i * s);
          gate = WeightTensor.dense(gu.name() + "[" + x + "][:, 0::2]^T", wf, i, h, transpose(w, h, 2 * i, 0, 2, s));
          up = WeightTensor.dense(gu.name() + "[" + x + "][:, 1::2]^T", wf, i, h, transpose(w, h, 2 * i, 1, 2, s));
          // down_proj[x] is [I, H]; canonical down is [H, I]
          ByteBuffer dw = dn.data((long) x * i * h * s, i * h * s);
          down = WeightTensor.dense(dn.name() + "[" + x + "]^T", wf, h, i, transpose(dw, i, h, 0, 1, s));
        }
        out.add(new Expert(gate, up, down, gateBias, upBias, downBias));
      }
      return out;
    }

    Tensor u8(String name, long[] shape, String... meaning) {
      Tensor t = tensor(name);
      if (t.dtype() != DType.U8 && t.dtype() != DType.F8_E8M0) {
        throw bad(name, "MXFP4 blocks/scales must be U8 (or F8_E8M0 scales), got " + t.dtype());
      }
      checkShape(t, shape, meaning);
      return t;
    }
  }

  /** Rows {@code first, first+2, ...} ({@code count} of them, each {@code rowBytes}) of {@code src}, copied. */
  static ByteBuffer everyOther(ByteBuffer src, int first, int count, int rowBytes) {
    ByteBuffer out = ByteBuffer.allocateDirect(Math.multiplyExact(count, rowBytes)).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer s = src.duplicate();
    for (int r = 0; r < count; r++) {
      int at = (2 * r + first) * rowBytes;
      s.limit(at + rowBytes).position(at);
      out.put(s);
      s.limit(s.capacity());
    }
    out.flip();
    return out;
  }

  /**
   * From a row-major {@code [n, m]} matrix of {@code s}-byte elements, the columns
   * {@code first, first+step, ...} transposed: out {@code [m/step, n]} with
   * {@code out[c][r] = src[r][first + c*step]}. Raw bytes are moved, nothing is rounded.
   */
  static ByteBuffer transpose(ByteBuffer src, int n, int m, int first, int step, int s) {
    int outRows = m / step;
    ByteBuffer out = ByteBuffer.allocateDirect(Math.multiplyExact(Math.multiplyExact(outRows, n), s))
        .order(ByteOrder.LITTLE_ENDIAN);
    for (int c = 0; c < outRows; c++) {
      int col = first + c * step;
      for (int r = 0; r < n; r++) {
        int at = (r * m + col) * s;
        if (s == 2) {
          out.putShort(src.getShort(at));
        } else if (s == 4) {
          out.putInt(src.getInt(at));
        } else {
          for (int b = 0; b < s; b++) {
            out.put(src.get(at + b));
          }
        }
      }
    }
    out.flip();
    return out;
  }
}
