package org.moespark.layer;

import java.util.List;
import org.moespark.cuda.Cuda;
import org.moespark.cuda.CudaEvent;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.cuda.PinnedBuffer;
import org.moespark.cuda.StreamTimeline;
import org.moespark.formats.ActQuantGpu;
import org.moespark.formats.Bf16;
import org.moespark.formats.BlockFp8;
import org.moespark.formats.FormatsGpu;
import org.moespark.formats.Mxfp;
import org.moespark.formats.Nvfp4;
import org.moespark.model.WeightTensor;
import org.moespark.ops.MoePermuteGpu;
import org.moespark.ops.Routing;
import org.moespark.ops.RoutingGpu;

/**
 * The CUDA backend of {@link MoeLayer}: expert weights resident on one device as bf16, tokens in,
 * output and routing out.
 *
 * <pre>
 *   route:     ids, w = router(x)                     on the CPU today ({@link #route}; RoutingGpu next)
 *   upload:    x fp32 → device, → bf16                FormatsGpu.bf16Encode
 *   permute:   MoePermuteGpu.maps + permuteRows        experts ascending, tokens ascending (bit-exact maps)
 *   gate/up:   act = SwiGLU(xp · [gate|up]ᵀ + b)      one grouped GEMM, activation fused in the epilogue
 *   down:      o = act · downᵀ + b                    one grouped GEMM (fp32 rows, bf16 rows for Compute.BF16)
 *   shared:    the same two GEMMs as a one-expert group over all tokens (Qwen2-MoE, DeepSeek-V3)
 *   combine:   y[t] = Σ_j w[t][j] · o[t][j] (+ shared)  ascending expert order, the CPU's fp32 / bf16 operations
 * </pre>
 *
 * <p>Numerics: GEMM inputs are bf16 (weights rounded to bf16 once at upload, activations rounded to
 * bf16 before each GEMM), accumulation fp32 on tensor cores. {@link Compute#BF16} applies
 * transformers' bf16 roundings at the same points as the CPU backend; {@link Compute#FP32} keeps fp32
 * between the GEMMs except for the bf16 GEMM inputs. Either way the result matches the CPU backend
 * within {@code Tolerance.BF16}, not bit for bit (the GEMM summation order differs). Quantized
 * checkpoints (block FP8, MXFP4, NVFP4, fp32) are dequantized at load and rounded to bf16 at upload:
 * weight-only, as on the CPU; GEMMs that consume FP4 weights directly are the next step.
 *
 * <p>{@link GemmPrecision#FP8} (opt-in: {@link #create(MoeBlockSpec, Compute, GemmPrecision)} or
 * {@code -Dmoespark.gpu.gemm=fp8}): the expert GEMMs run on e4m3 operands ({@link GroupedGemmFp8}) —
 * weights quantized at upload with 128×128 block scales (from the bf16-rounded weights, Paddle's rule
 * without pow2, on the device), activations quantized per 1×128 group before each GEMM
 * ({@link ActQuantGpu}, DeepSeek's {@code act_quant} rule); the intermediate width is padded to a multiple
 * of 16. Results then match the CPU backend within FP8 tolerance, not bf16's.
 *
 * <p>Thread safety: {@link #forward} may be called from any number of threads; calls are serialized per
 * layer on the layer's own stream (one device, one stream: the GEMMs fill the GPU on their own).
 * Device memory: weights stay resident until {@link #close}; each call allocates and frees its scratch
 * stream-ordered.
 */
public final class MoeLayerGpu implements AutoCloseable {
  private final Router router;
  private final int device;
  private final int hidden;
  private final int numExperts;
  private final int topK;
  private final Compute compute;
  private final GemmPrecision gemm;
  private final GatedActivation activation;
  private final CudaStream stream;
  private final DeviceAllocator weightsAlloc;
  private final DeviceAllocator work;
  private final DeviceWeights experts;
  private final DeviceWeights shared; // null without a shared expert
  private final DeviceBuffer sharedGate; // fp32 [H] or null
  private final DeviceBuffer routerWeight; // bf16 [E, H]: the device router's GEMM weights
  private final DeviceBuffer routerBias; // fp32 [E] or null (GPT-OSS)
  private final DeviceBuffer correctionBias; // fp32 [E] or null (DeepSeek-V3)
  private boolean closed;

  /** One group of gated experts on the device, in the grouped GEMM's layouts. */
  private static final class DeviceWeights {
    final int count;
    final int inter;
    final int ip; // pad8(inter)
    final DeviceBuffer gateUp; // bf16 [count, 2·ip, H] interleaved per 8 (null for FP8)
    final DeviceBuffer down; // bf16 [count, H, ip] (null for FP8)
    final DeviceBuffer gateUpBias; // fp32 [count, 2·ip] or null
    final DeviceBuffer downBias; // fp32 [count, H] or null
    // FP8 (GemmPrecision.FP8; else null): e4m3 codes and 128×128 block scales of gateUp and down
    final DeviceBuffer gateUpQ; // e4m3 [count, 2·ip, H]
    final DeviceBuffer gateUpS; // fp32 [count, ceil(2·ip/128), ceil(H/128)]
    final DeviceBuffer downQ; // e4m3 [count, H, ip]
    final DeviceBuffer downS; // fp32 [count, ceil(H/128), ceil(ip/128)]
    // FP4 (GemmPrecision.MXFP4 / NVFP4; else null): codes, block scales and NVFP4's per-matrix scale per row
    final Fp4 fp4;
    // host amax of each expert's gate/up and down matrix (bf16 values), for NVFP4's per-matrix scale; or null
    float[] guAmax;
    float[] dAmax;

    /** FP4 weights of the experts: GroupedGemmFp4's operands for the gate/up and the down GEMM. */
    record Fp4(WeightTensor.Format format, DeviceBuffer guCodes, DeviceBuffer guScales, DeviceBuffer guCol,
        DeviceBuffer dCodes, DeviceBuffer dScales, DeviceBuffer dCol) {
      void close() {
        closeAll(guCodes, guScales, guCol, dCodes, dScales, dCol);
      }
    }

    /** Closes the non-null buffers. */
    static void closeAll(DeviceBuffer... bs) {
      for (DeviceBuffer b : bs) {
        if (b != null) {
          b.close();
        }
      }
    }

    DeviceWeights(int count, int inter, DeviceBuffer gateUp, DeviceBuffer down, DeviceBuffer gateUpBias,
        DeviceBuffer downBias) {
      this(count, inter, gateUp, down, gateUpBias, downBias, null, null, null, null, null);
    }

    private DeviceWeights(int count, int inter, DeviceBuffer gateUp, DeviceBuffer down, DeviceBuffer gateUpBias,
        DeviceBuffer downBias, DeviceBuffer gateUpQ, DeviceBuffer gateUpS, DeviceBuffer downQ, DeviceBuffer downS,
        Fp4 fp4) {
      this.count = count;
      this.inter = inter;
      this.ip = GroupedGemm.pad8(inter);
      this.gateUp = gateUp;
      this.down = down;
      this.gateUpBias = gateUpBias;
      this.downBias = downBias;
      this.gateUpQ = gateUpQ;
      this.gateUpS = gateUpS;
      this.downQ = downQ;
      this.downS = downS;
      this.fp4 = fp4;
    }

    boolean fp8() {
      return gateUpQ != null;
    }

    /**
     * These bf16 weights quantized to e4m3 with 128×128 block scales per expert matrix (on the device:
     * bf16 → fp32 → {@link FormatsGpu#blockFp8Quantize}, Paddle's rule without pow2, bit-identical to
     * {@link BlockFp8#quantizeWeights}); the bf16 buffers are freed. {@code ip} must be a multiple of 16.
     */
    DeviceWeights toFp8(DeviceAllocator alloc, CudaStream stream, int hidden, String what) {
      int guRows = 2 * ip;
      long guN = (long) guRows * hidden;
      long dN = (long) hidden * ip;
      long guS = (long) GroupedGemmFp8.blocks(guRows) * GroupedGemmFp8.blocks(hidden);
      long dS = (long) GroupedGemmFp8.blocks(hidden) * GroupedGemmFp8.blocks(ip);
      DeviceBuffer guq = alloc.allocate(guN * count, what + " gate/up e4m3");
      DeviceBuffer gus = alloc.allocate(4 * guS * count, what + " gate/up block scales");
      DeviceBuffer dq = alloc.allocate(dN * count, what + " down e4m3");
      DeviceBuffer ds = alloc.allocate(4 * dS * count, what + " down block scales");
      try (DeviceBuffer tmp = alloc.allocate(4 * Math.max(guN, dN), what + " fp32 staging")) {
        for (int e = 0; e < count; e++) {
          FormatsGpu.bf16Decode(gateUp.view(2 * guN * e, 2 * guN), tmp, guN, stream);
          FormatsGpu.blockFp8Quantize(BlockFp8.ScaleRule.PADDLE, tmp, guRows, hidden, BlockFp8.BLOCK, BlockFp8.BLOCK,
              false, guq.view(guN * e, guN), gus.view(4 * guS * e, 4 * guS), stream);
          FormatsGpu.bf16Decode(down.view(2 * dN * e, 2 * dN), tmp, dN, stream);
          FormatsGpu.blockFp8Quantize(BlockFp8.ScaleRule.PADDLE, tmp, hidden, ip, BlockFp8.BLOCK, BlockFp8.BLOCK,
              false, dq.view(dN * e, dN), ds.view(4 * dS * e, 4 * dS), stream);
        }
      }
      gateUp.close();
      down.close();
      return new DeviceWeights(count, inter, null, null, gateUpBias, downBias, guq, gus, dq, ds, null);
    }

    /**
     * These bf16 weights quantized to FP4 per expert matrix on the device (bf16 → fp32 → {@link
     * FormatsGpu#mxQuantize} / {@link FormatsGpu#nvfp4Quantize}, bit-identical to {@link Mxfp#quantize} /
     * {@link Nvfp4#quantize}; NVFP4's global scale from the host amax of the matrix, {@code amax / 2688}); the
     * bf16 buffers are freed. {@code ip} and {@code hidden} must be multiples of 32.
     */
    DeviceWeights toFp4(DeviceAllocator alloc, CudaStream stream, int hidden, String what, WeightTensor.Format format) {
      boolean nv = format == WeightTensor.Format.NVFP4;
      if (nv && (guAmax == null || dAmax == null)) {
        throw new IllegalStateException("GPU layer: NVFP4 quantization needs the weights' amax");
      }
      int blk = GroupedGemmFp4.block(format);
      int guRows = 2 * ip;
      long guN = (long) guRows * hidden;
      long dN = (long) hidden * ip;
      DeviceBuffer guc = null;
      DeviceBuffer gus = null;
      DeviceBuffer dc = null;
      DeviceBuffer dsc = null;
      DeviceBuffer guCol = null;
      DeviceBuffer dCol = null;
      try (DeviceBuffer tmp = alloc.allocate(4 * Math.max(guN, dN), what + " fp32 staging")) {
        guc = alloc.allocate(guN / 2 * count, what + " gate/up e2m1");
        gus = alloc.allocate(guN / blk * count, what + " gate/up block scales");
        dc = alloc.allocate(dN / 2 * count, what + " down e2m1");
        dsc = alloc.allocate(dN / blk * count, what + " down block scales");
        float[] guG = new float[count];
        float[] dG = new float[count];
        for (int e = 0; e < count; e++) {
          FormatsGpu.bf16Decode(gateUp.view(2 * guN * e, 2 * guN), tmp, guN, stream);
          quantizeFp4(format, tmp, guRows, hidden, nv ? guG[e] = Nvfp4.globalScale(guAmax[e]) : 0f,
              guc.view(guN / 2 * e, guN / 2), gus.view(guN / blk * e, guN / blk), stream);
          FormatsGpu.bf16Decode(down.view(2 * dN * e, 2 * dN), tmp, dN, stream);
          quantizeFp4(format, tmp, hidden, ip, nv ? dG[e] = Nvfp4.globalScale(dAmax[e]) : 0f,
              dc.view(dN / 2 * e, dN / 2), dsc.view(dN / blk * e, dN / blk), stream);
        }
        if (nv) {
          float[] gc = new float[count * guRows];
          float[] dcl = new float[count * hidden];
          for (int e = 0; e < count; e++) {
            java.util.Arrays.fill(gc, e * guRows, (e + 1) * guRows, guG[e]);
            java.util.Arrays.fill(dcl, e * hidden, (e + 1) * hidden, dG[e]);
          }
          guCol = alloc.upload(gc, what + " gate/up weight_scale_2");
          dCol = alloc.upload(dcl, what + " down weight_scale_2");
        }
        stream.synchronize();
      } catch (RuntimeException ex) {
        closeAll(guc, gus, dc, dsc, guCol, dCol);
        throw ex;
      }
      gateUp.close();
      down.close();
      return new DeviceWeights(count, inter, null, null, gateUpBias, downBias, null, null, null, null,
          new Fp4(format, guc, gus, guCol, dc, dsc, dCol));
    }

    /**
     * The routed experts' checkpoint FP4 codes and scales uploaded as they are ({@link Fp4Expert#layout}: gate/up
     * rows interleaved per 8, the intermediate width padded to a multiple of 32, NVFP4's {@code weight_scale_2}
     * per row), biases from the dequantized {@code ws}. No bf16 copy is made.
     */
    static DeviceWeights uploadFp4(DeviceAllocator alloc, List<Fp4Expert> qs, List<ExpertWeights> ws, int hidden,
        String what) {
      int count = qs.size();
      int inter = oneIntermediate(ws, what); // the spec checked that qs has the same shapes
      WeightTensor.Format format = qs.get(0).format();
      int ip = (inter + 31) & -32;
      int blk = GroupedGemmFp4.block(format);
      long guC = 2L * ip * (hidden / 2);
      long guS = 2L * ip * (hidden / blk);
      long dC = (long) hidden * (ip / 2);
      long dS = (long) hidden * (ip / blk);
      boolean nv = format == WeightTensor.Format.NVFP4;
      boolean biases = ws.stream().anyMatch(ExpertWeights::hasBiases);
      DeviceBuffer guc = null;
      DeviceBuffer gus = null;
      DeviceBuffer dc = null;
      DeviceBuffer dsc = null;
      DeviceBuffer guCol = null;
      DeviceBuffer dCol = null;
      DeviceBuffer gub = null;
      DeviceBuffer db = null;
      try {
        guc = alloc.allocate(guC * count, what + " gate/up e2m1");
        gus = alloc.allocate(guS * count, what + " gate/up block scales");
        dc = alloc.allocate(dC * count, what + " down e2m1");
        dsc = alloc.allocate(dS * count, what + " down block scales");
        guCol = nv ? alloc.allocate(4L * 2 * ip * count, what + " gate/up weight_scale_2") : null;
        dCol = nv ? alloc.allocate(4L * hidden * count, what + " down weight_scale_2") : null;
        gub = biases ? alloc.allocate(4L * 2 * ip * count, what + " gate/up bias") : null;
        db = biases ? alloc.allocate(4L * hidden * count, what + " down bias") : null;
        for (int e = 0; e < count; e++) {
          Fp4Expert.Layout l = qs.get(e).layout(ip);
          guc.view(guC * e, guC).copyFrom(l.guCodes());
          gus.view(guS * e, guS).copyFrom(l.guScales());
          dc.view(dC * e, dC).copyFrom(l.dCodes());
          dsc.view(dS * e, dS).copyFrom(l.dScales());
          if (nv) {
            guCol.view(8L * ip * e, 8L * ip).copyFrom(l.guCol());
            dCol.view(4L * hidden * e, 4L * hidden).copyFrom(l.dCol());
          }
          if (biases) {
            ExpertWeights w = ws.get(e);
            float[] gb = new float[2 * ip];
            float[] ib = GroupedGemm.interleaveBias(w.gateBias(), w.upBias(), inter);
            System.arraycopy(ib, 0, gb, 0, ib.length);
            gub.view(8L * ip * e, 8L * ip).copyFrom(gb);
            db.view(4L * hidden * e, 4L * hidden).copyFrom(w.downBias() == null ? new float[hidden] : w.downBias());
          }
        }
      } catch (RuntimeException ex) {
        closeAll(guc, gus, dc, dsc, guCol, dCol, gub, db);
        throw ex;
      }
      return new DeviceWeights(count, ip, null, null, gub, db, null, null, null, null,
          new Fp4(format, guc, gus, guCol, dc, dsc, dCol));
    }

    private static void quantizeFp4(WeightTensor.Format format, DeviceBuffer x, long rows, long cols, float global,
        DeviceBuffer codes, DeviceBuffer scales, CudaStream stream) {
      if (format == WeightTensor.Format.MXFP4) {
        FormatsGpu.mxQuantize(Mxfp.Kind.MXFP4, x, rows, cols, codes, scales, stream);
      } else {
        FormatsGpu.nvfp4Quantize(x, rows, cols, global, codes, scales, stream);
      }
    }

    void close() {
      closeAll(gateUp, down, gateUpBias, downBias, gateUpQ, gateUpS, downQ, downS);
      if (fp4 != null) {
        fp4.close();
      }
    }

    /**
     * Uploads the experts' weights as bf16; {@code pad16} (FP8) zero-pads the intermediate width to a
     * multiple of 16 (the FP8 GEMM's k granularity) before the layouts are built.
     */
    /**
     * Uploads the experts' weights as bf16, the intermediate width zero-padded to a multiple of {@code pad}
     * (8: bf16; 16: FP8's k granularity; 32: FP4's); with {@code amax}, each matrix's amax (of its bf16 values)
     * is kept for NVFP4's per-matrix scale.
     */
    static DeviceWeights upload(DeviceAllocator alloc, List<ExpertWeights> ws, int hidden, String what, int pad,
        boolean amax) {
      if (ws.get(0).intermediate() % pad != 0) {
        ws = ws.stream().map(w -> padInter(w, hidden, pad)).toList();
      }
      DeviceWeights dw = upload(alloc, ws, hidden, what);
      if (amax) {
        int count = ws.size();
        dw.guAmax = new float[count];
        dw.dAmax = new float[count];
        for (int e = 0; e < count; e++) {
          ExpertWeights w = ws.get(e);
          // amax of the bf16-rounded values = bf16(amax): rounding is monotonic
          dw.guAmax[e] = Bf16.round(Math.max(Nvfp4.absMax(w.gate(), 0, w.gate().length),
              Nvfp4.absMax(w.up(), 0, w.up().length)));
          dw.dAmax[e] = Bf16.round(Nvfp4.absMax(w.down(), 0, w.down().length));
        }
      }
      return dw;
    }

    /** The experts' common intermediate width (the grouped GEMM needs one); names the first that differs. */
    static int oneIntermediate(List<ExpertWeights> ws, String what) {
      int inter = ws.get(0).intermediate();
      for (int e = 0; e < ws.size(); e++) {
        if (ws.get(e).intermediate() != inter) {
          throw new IllegalArgumentException("GPU layer: " + what + " " + e + " has intermediate size "
              + ws.get(e).intermediate() + ", expected " + inter + " (" + what + " 0's): the grouped GEMM needs one width");
        }
      }
      return inter;
    }

    static DeviceWeights upload(DeviceAllocator alloc, List<ExpertWeights> ws, int hidden, String what) {
      int count = ws.size();
      int inter = oneIntermediate(ws, what);
      boolean biases = ws.stream().anyMatch(ExpertWeights::hasBiases);
      int ip = GroupedGemm.pad8(inter);
      long guBytes = 2L * 2 * ip * hidden;
      long dBytes = 2L * hidden * ip;
      DeviceBuffer gu = alloc.allocate(guBytes * count, what + " gate/up bf16");
      DeviceBuffer dn = alloc.allocate(dBytes * count, what + " down bf16");
      DeviceBuffer gub = biases ? alloc.allocate(4L * 2 * ip * count, what + " gate/up bias") : null;
      DeviceBuffer db = biases ? alloc.allocate(4L * hidden * count, what + " down bias") : null;
      for (int e = 0; e < count; e++) {
        ExpertWeights w = ws.get(e);
        gu.view(guBytes * e, guBytes).copyFrom(GroupedGemm.interleaveGateUp(w.gate(), w.up(), inter, hidden));
        dn.view(dBytes * e, dBytes).copyFrom(GroupedGemm.padDown(w.down(), hidden, inter));
        if (biases) {
          gub.view(8L * ip * e, 8L * ip).copyFrom(GroupedGemm.interleaveBias(w.gateBias(), w.upBias(), inter));
          db.view(4L * hidden * e, 4L * hidden).copyFrom(w.downBias() == null ? new float[hidden] : w.downBias());
        }
      }
      return new DeviceWeights(count, inter, gu, dn, gub, db);
    }
  }

  /**
   * {@code w} with its intermediate width zero-padded to a multiple of {@code pad}, a power of two (same function:
   * the extra units are 0).
   */
  static ExpertWeights padInter(ExpertWeights w, int hidden, int pad) {
    int inter = w.intermediate();
    int ip = (inter + pad - 1) & -pad;
    float[] gate = java.util.Arrays.copyOf(w.gate(), ip * hidden);
    float[] up = java.util.Arrays.copyOf(w.up(), ip * hidden);
    float[] down = new float[hidden * ip];
    for (int r = 0; r < hidden; r++) {
      System.arraycopy(w.down(), r * inter, down, r * ip, inter);
    }
    float[] gb = w.gateBias() == null ? null : java.util.Arrays.copyOf(w.gateBias(), ip);
    float[] ub = w.upBias() == null ? null : java.util.Arrays.copyOf(w.upBias(), ip);
    return new ExpertWeights(hidden, ip, gate, up, down, gb, ub, w.downBias());
  }

  private MoeLayerGpu(RouterSpec routerSpec, GatedActivation activation, Compute compute, GemmPrecision gemm) {
    NativeLibrary.requireAvailable();
    this.router = new Router(routerSpec, compute);
    this.hidden = routerSpec.hidden();
    this.numExperts = routerSpec.experts();
    this.topK = routerSpec.topK();
    if (topK > MAX_TOP_K) {
      throw new IllegalArgumentException("GPU layer: topK must be <= " + MAX_TOP_K + ", got " + topK);
    }
    this.compute = compute;
    this.gemm = gemm;
    if (gemm == GemmPrecision.FP8 && hidden % 16 != 0) {
      throw new IllegalArgumentException("GPU layer: FP8 GEMMs need hidden to be a multiple of 16 (16-byte e4m3 "
          + "rows), got " + hidden + "; use GemmPrecision.BF16");
    }
    if (gemm.fp4() && hidden % 32 != 0) {
      throw new IllegalArgumentException("GPU layer: FP4 GEMMs need hidden to be a multiple of 32 (16-byte code "
          + "loads), got " + hidden + "; use GemmPrecision.BF16");
    }
    this.activation = activation;
    this.device = Cuda.currentDevice();
    this.stream = CudaStream.create();
    this.weightsAlloc = new DeviceAllocator("moe layer weights", stream);
    this.work = new DeviceAllocator("moe layer scratch", stream);
    this.experts = null;
    this.shared = null;
    this.sharedGate = null;
    DeviceBuffer rw = null;
    DeviceBuffer rb = null;
    DeviceBuffer cb = null;
    try {
      short[] wb = new short[routerSpec.weight().length];
      org.moespark.formats.Bf16.encode(routerSpec.weight(), 0, wb, 0, wb.length);
      rw = weightsAlloc.upload(wb, "router weight bf16");
      if (routerSpec.bias() != null) {
        float[] b = routerSpec.bias().clone();
        if (compute == Compute.BF16) {
          LayerNumerics.bf16InPlace(b, 0, b.length); // as the CPU Router
        }
        rb = weightsAlloc.upload(b, "router bias");
      }
      if (routerSpec.correctionBias() != null) {
        cb = weightsAlloc.upload(routerSpec.correctionBias(), "router correction bias");
      }
    } catch (RuntimeException e) {
      releaseAfterFailure(e);
      throw e;
    }
    this.routerWeight = rw;
    this.routerBias = rb;
    this.correctionBias = cb;
  }

  private MoeLayerGpu(MoeLayerGpu base, DeviceWeights experts, DeviceWeights shared, DeviceBuffer sharedGate) {
    this.router = base.router;
    this.hidden = base.hidden;
    this.numExperts = base.numExperts;
    this.topK = base.topK;
    this.compute = base.compute;
    this.gemm = base.gemm;
    this.activation = base.activation;
    this.device = base.device;
    this.stream = base.stream;
    this.weightsAlloc = base.weightsAlloc;
    this.work = base.work;
    this.experts = experts;
    this.shared = shared;
    this.sharedGate = sharedGate;
    this.routerWeight = base.routerWeight;
    this.routerBias = base.routerBias;
    this.correctionBias = base.correctionBias;
  }

  /** Largest top-k of the combine kernel ({@code kCombineMaxTopK} in moe_layer.cuh). */
  public static final int MAX_TOP_K = 64;

  /**
   * Uploads {@code spec}'s weights (rounded to bf16) to the current device, expert GEMMs in the precision
   * of {@link GemmPrecision#fromProperty()} (bf16 unless {@code -Dmoespark.gpu.gemm=fp8}).
   *
   * @throws IllegalArgumentException when the routed experts do not share one intermediate size
   * @throws IllegalStateException when the GPU is unavailable (the message says why)
   */
  public static MoeLayerGpu create(MoeBlockSpec spec, Compute compute) {
    return create(spec, compute, GemmPrecision.fromProperty());
  }

  /**
   * Uploads {@code spec}'s weights to the current device for expert GEMMs in {@code gemm} precision
   * ({@link GemmPrecision#FP8}: rounded to bf16, then quantized to e4m3 with 128×128 block scales).
   *
   * @throws IllegalArgumentException when the routed experts do not share one intermediate size, or for
   *     FP8 when {@code hidden} is not a multiple of 16
   */
  public static MoeLayerGpu create(MoeBlockSpec spec, Compute compute, GemmPrecision gemm) {
    if (gemm == null) {
      throw new IllegalArgumentException("GPU layer: gemm precision must not be null");
    }
    if (spec == null) {
      throw new IllegalArgumentException("GPU layer: spec must not be null");
    }
    if (compute == null) {
      throw new IllegalArgumentException("GPU layer: compute must not be null");
    }
    MoeLayerGpu base = new MoeLayerGpu(spec.router(), spec.activation(), compute, gemm);
    try {
      int pad = padOf(gemm);
      boolean amax = gemm == GemmPrecision.NVFP4;
      DeviceWeights ex = checkpointFp4(spec, gemm)
          ? DeviceWeights.uploadFp4(base.weightsAlloc, spec.fp4Experts(), spec.experts(), base.hidden, "expert")
          : base.precision(DeviceWeights.upload(base.weightsAlloc, spec.experts(), base.hidden, "expert", pad, amax),
              "expert");
      DeviceWeights sh = spec.shared() == null ? null
          : base.precision(DeviceWeights.upload(base.weightsAlloc, List.of(spec.shared()), base.hidden,
              "shared expert", pad, amax), "shared expert");
      DeviceBuffer g = null;
      if (spec.sharedGate() != null) {
        float[] gate = spec.sharedGate().clone();
        if (compute == Compute.BF16) {
          LayerNumerics.bf16InPlace(gate, 0, gate.length);
        }
        g = base.weightsAlloc.upload(gate, "shared expert gate");
      }
      base.stream.synchronize();
      return new MoeLayerGpu(base, ex, sh, g);
    } catch (RuntimeException e) {
      base.releaseAfterFailure(e);
      throw e;
    }
  }

  /**
   * A layer with random bf16 expert weights generated on the device (uniform, scaled by
   * {@code 1/sqrt(fan-in)}), for benchmarks at real model sizes without host copies of the weights.
   * The router is {@code routerSpec} (host weights).
   */
  public static MoeLayerGpu random(RouterSpec routerSpec, int inter, GatedActivation activation, boolean sharedExpert,
      Compute compute, long seed) {
    return random(routerSpec, inter, activation, sharedExpert, compute, GemmPrecision.BF16, seed);
  }

  /**
   * As {@link #random(RouterSpec, int, GatedActivation, boolean, Compute, long)}, expert GEMMs in {@code gemm}
   * precision: for {@link GemmPrecision#FP8} the same bf16 weights (same seed, same values) quantized on the
   * device with 128×128 block scales, the intermediate width padded to a multiple of 16.
   */
  public static MoeLayerGpu random(RouterSpec routerSpec, int inter, GatedActivation activation, boolean sharedExpert,
      Compute compute, GemmPrecision gemm, long seed) {
    if (routerSpec == null || activation == null || compute == null || gemm == null) {
      throw new IllegalArgumentException("GPU layer: routerSpec, activation, compute and gemm must not be null");
    }
    if (inter <= 0) {
      throw new IllegalArgumentException("GPU layer: inter must be > 0, got " + inter);
    }
    MoeLayerGpu base = new MoeLayerGpu(routerSpec, activation, compute, gemm);
    try {
      DeviceWeights ex = base.precision(randomWeights(base, routerSpec.experts(), inter, seed), "expert");
      DeviceWeights sh = sharedExpert ? base.precision(randomWeights(base, 1, inter, seed + 1000), "shared expert")
          : null;
      base.stream.synchronize();
      return new MoeLayerGpu(base, ex, sh, null);
    } catch (RuntimeException e) {
      base.releaseAfterFailure(e);
      throw e;
    }
  }

  /** Whether {@code spec}'s routed experts go to the device as the checkpoint's own FP4 codes for {@code gemm}. */
  private static boolean checkpointFp4(MoeBlockSpec spec, GemmPrecision gemm) {
    if (spec.fp4Experts() == null || !gemm.fp4()) {
      return false;
    }
    WeightTensor.Format f = spec.fp4Experts().get(0).format();
    return (f == WeightTensor.Format.MXFP4) == (gemm == GemmPrecision.MXFP4);
  }

  /** The intermediate width's granularity for {@code gemm}: the k of the down GEMM (8 bf16, 16 FP8, 32 FP4). */
  private static int padOf(GemmPrecision gemm) {
    return gemm == GemmPrecision.FP8 ? 16 : gemm.fp4() ? 32 : 8;
  }

  /** {@code dw} in this layer's GEMM precision (FP8, FP4: quantized, the bf16 buffers freed). */
  private DeviceWeights precision(DeviceWeights dw, String what) {
    try {
      return switch (gemm) {
        case FP8 -> dw.toFp8(weightsAlloc, stream, hidden, what);
        case MXFP4 -> dw.toFp4(weightsAlloc, stream, hidden, what, WeightTensor.Format.MXFP4);
        case NVFP4 -> dw.toFp4(weightsAlloc, stream, hidden, what, WeightTensor.Format.NVFP4);
        default -> dw;
      };
    } catch (RuntimeException e) {
      dw.close();
      throw e;
    }
  }

  private static DeviceWeights randomWeights(MoeLayerGpu base, int count, int inter, long seed) {
    int pad = padOf(base.gemm);
    int ip = (inter + pad - 1) & -pad;
    int h = base.hidden;
    DeviceBuffer gu = base.weightsAlloc.allocate(2L * count * 2 * ip * h, "random gate/up");
    DeviceBuffer dn = base.weightsAlloc.allocate(2L * count * h * ip, "random down");
    fillRandomBf16Native(gu.address(), (long) count * 2 * ip * h, seed, (float) (1 / Math.sqrt(h)),
        base.stream.handle());
    fillRandomBf16Native(dn.address(), (long) count * h * ip, seed + 1, (float) (1 / Math.sqrt(ip)), base.stream.handle());
    DeviceWeights dw = new DeviceWeights(count, ip, gu, dn, null, null);
    // the fill's bound, |w| < scale: NVFP4's per-matrix scale from it (a bound, not the exact amax)
    dw.guAmax = new float[count];
    dw.dAmax = new float[count];
    java.util.Arrays.fill(dw.guAmax, Bf16.round((float) (1 / Math.sqrt(h))));
    java.util.Arrays.fill(dw.dAmax, Bf16.round((float) (1 / Math.sqrt(ip))));
    return dw;
  }

  public int hiddenSize() {
    return hidden;
  }

  public int topK() {
    return topK;
  }

  public int numExperts() {
    return numExperts;
  }

  /** Intermediate width of the routed experts as stored on the device (a multiple of 8). */
  public int paddedIntermediate() {
    return experts.ip;
  }

  public Compute compute() {
    return compute;
  }

  /** The operand precision of the expert GEMMs. */
  public GemmPrecision gemmPrecision() {
    return gemm;
  }

  /** The CUDA device the weights live on. */
  public int device() {
    return device;
  }

  /** The layer's stream (for timing); work for this layer must not be enqueued on it concurrently with {@link #forward}. */
  public CudaStream stream() {
    return stream;
  }

  /** Device bytes held by the resident weights. */
  public long weightBytes() {
    return weightsAlloc.bytesInUse();
  }

  /**
   * The routing of {@code tokens} rows (the one place to switch to device routing).
   *
   * @param x fp32 {@code [tokens, H]}, bf16-rounded already for {@link Compute#BF16}
   */
  Router.Routed route(float[] x, int tokens) {
    return router.route(x, tokens);
  }

  /**
   * Runs the layer: see {@link MoeLayer#forward} for the contract (same shapes and routing semantics).
   *
   * @param x row-major fp32 {@code [tokens, H]}; not modified
   */
  public MoeLayer.Output forward(float[] x, int tokens) {
    checkInput(x == null ? -1 : x.length, tokens);
    float[] xin = x;
    if (compute == Compute.BF16) {
      xin = x.clone();
      LayerNumerics.bf16InPlace(xin, 0, xin.length);
    }
    Router.Routed r = route(xin, tokens);
    float[] y = new float[tokens * hidden];
    if (tokens > 0) {
      synchronized (this) {
        ensureOpen();
        Cuda.setDevice(device);
        try (DeviceBuffer xd = work.upload(xin, "x fp32"); DeviceBuffer yd = work.allocate(4L * y.length, "y")) {
          run(xd, tokens, r, yd);
          yd.copyTo(y);
        }
      }
    }
    return new MoeLayer.Output(tokens, hidden, topK, y, r.ids(), r.weights());
  }

  /**
   * The zero-copy entry point for callers that keep rows in page-locked memory (Spark columnar
   * batches): reads {@code x} (fp32 {@code [tokens, H]}, native order) from {@code xHost}, writes y
   * (fp32 {@code [tokens, H]}) into {@code yHost}; both copies are asynchronous DMA on the layer's stream.
   *
   * @return the routing ({@code y} of the returned record is null: the output is in {@code yHost})
   */
  public MoeLayer.Output forward(PinnedBuffer xHost, int tokens, PinnedBuffer yHost) {
    if (xHost == null || yHost == null) {
      throw new IllegalArgumentException("GPU layer: xHost and yHost must not be null");
    }
    long bytes = 4L * tokens * hidden;
    checkInput(tokens < 0 ? -1 : (xHost.size() >= bytes ? tokens * hidden : -2), tokens);
    if (yHost.size() < bytes) {
      throw new IllegalArgumentException("GPU layer: yHost must hold [tokens=" + tokens + ", hidden=" + hidden + "] = "
          + bytes + " bytes, got " + yHost.size());
    }
    float[] xin = new float[tokens * hidden];
    xHost.buffer().order(java.nio.ByteOrder.nativeOrder()).asFloatBuffer().get(0, xin);
    if (compute == Compute.BF16) {
      LayerNumerics.bf16InPlace(xin, 0, xin.length);
    }
    Router.Routed r = route(xin, tokens);
    if (tokens > 0) {
      synchronized (this) {
        ensureOpen();
        Cuda.setDevice(device);
        try (DeviceBuffer xd = work.allocate(bytes, "x fp32"); DeviceBuffer yd = work.allocate(bytes, "y")) {
          xd.copyFromAsync(xHost, 0, 0, bytes, stream);
          run(xd, tokens, r, yd);
          yd.copyToAsync(yHost, 0, 0, bytes, stream);
          stream.synchronize();
        }
      }
    }
    return new MoeLayer.Output(tokens, hidden, topK, null, r.ids(), r.weights());
  }

  /**
   * The device-resident entry point (zero-copy Spark use, benchmarks): routes on the device
   * ({@code org.moespark.ops.RoutingGpu} on logits from a bf16 tensor-core GEMM) and runs the layer on
   * {@code x}, writing {@code y}. Only the routing ({@code [tokens, topK]} ids and weights) travels to the
   * host, once (the permute needs the per-expert counts there). Returns after y is complete.
   *
   * <p>Routing differs from {@link #forward(float[], int)} (the CPU router) only where the logits do:
   * they are computed from bf16 x and bf16 router weights with fp32 accumulation in another order, so
   * near-tied experts can swap, and with {@link Compute#FP32} the bf16 rounding of x and the router
   * weights moves logits by about 2^-9 relative. RoutingGpu ranks a NaN logit like -inf (the CPU router
   * ranks it first and poisons the token); a NaN row still gives a NaN output row.
   *
   * @param x device fp32 {@code [tokens, H]} on this layer's device, complete (synchronized) before the call
   * @param y device fp32 {@code [tokens, H]}, overwritten
   * @return the routing; {@code y} of the record is null (the output is in {@code y})
   */
  public MoeLayer.Output forwardDevice(DeviceBuffer x, int tokens, DeviceBuffer y) {
    if (tokens < 0) {
      throw new IllegalArgumentException("tokens must be >= 0, got " + tokens);
    }
    long n = (long) tokens * hidden;
    if (x == null || x.size() < 4 * n) {
      throw new IllegalArgumentException("x must be a device buffer of [tokens=" + tokens + ", hidden=" + hidden
          + "] fp32 = " + 4 * n + " bytes, got " + (x == null ? "null" : x.size() + " bytes"));
    }
    if (y == null || y.size() < 4 * n) {
      throw new IllegalArgumentException("y must be a device buffer of [tokens=" + tokens + ", hidden=" + hidden
          + "] fp32 = " + 4 * n + " bytes, got " + (y == null ? "null" : y.size() + " bytes"));
    }
    if ((long) tokens * topK > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("tokens·topK = " + (long) tokens * topK + " exceeds a Java array");
    }
    if (tokens == 0) {
      return new MoeLayer.Output(0, hidden, topK, null, new int[0], new float[0]);
    }
    boolean bf16 = compute == Compute.BF16;
    RouterSpec rs = router.spec();
    synchronized (this) {
      ensureOpen();
      Cuda.setDevice(device);
      mark("enter");
      try (DeviceBuffer xb = work.allocate(2 * n, "x bf16");
          DeviceBuffer logits = work.allocate(4L * tokens * numExperts, "router logits")) {
        mark("allocate");
        FormatsGpu.bf16Encode(x, xb, n, stream);
        mark("x to bf16");
        GroupedGemm.gemm(work, xb, hidden, new int[] {0, tokens}, routerWeight, hidden, numExperts, hidden, routerBias,
            GroupedGemm.Epilogue.STORE_F32, false, null, logits, numExperts);
        mark("router GEMM");
        // bf16 models round the logits once (after the bias), except DeepSeek's fp32 router: as Router.route
        boolean bf16Logits = bf16 && rs.kind() != RouterSpec.Kind.SIGMOID_GROUPED_TOPK;
        RoutingGpu.LogitsType type = bf16Logits ? RoutingGpu.LogitsType.BF16 : RoutingGpu.LogitsType.F32;
        RoutingGpu.DeviceResult rr;
        try (DeviceBuffer lb = bf16Logits ? work.allocate(2L * tokens * numExperts, "router logits bf16") : null) {
          if (lb != null) {
            FormatsGpu.bf16Encode(logits, lb, (long) tokens * numExperts, stream);
          }
          DeviceBuffer lg = lb != null ? lb : logits;
          rr = switch (rs.kind()) {
            case SOFTMAX_TOPK -> RoutingGpu.softmaxTopK(work, lg, type, tokens, numExperts, topK, rs.normTopK());
            case TOPK_SOFTMAX -> RoutingGpu.topKSoftmax(work, lg, type, tokens, numExperts, topK);
            case SIGMOID_GROUPED_TOPK -> RoutingGpu.sigmoidGroupedTopK(work, lg, type, tokens, numExperts, topK,
                correctionBias, rs.nGroup(), rs.topkGroup(), rs.normTopK(), rs.routedScalingFactor(),
                Routing.GroupMask.NEG_INF);
          };
        }
        try (rr) {
          if (bf16 && rs.weightsInModelDtype()) {
            try (DeviceBuffer wb = work.allocate(2L * tokens * topK, "routing weights bf16")) {
              FormatsGpu.bf16Encode(rr.weights(), wb, (long) tokens * topK, stream);
              FormatsGpu.bf16Decode(wb, rr.weights(), (long) tokens * topK, stream);
            }
          }
          int slots = tokens * topK;
          mark("routing");
          // The routing stays on the device: the permute maps count the experts' rows there (their one
          // synchronization reads the counts back). The ids and weights go to pinned memory on the stream, and
          // the host unpacks them into the returned arrays while the device runs the experts.
          PinnedBuffer routed = routingHost(8L * slots);
          rr.ids().copyToAsync(routed, 0, 0, 4L * slots, stream);
          rr.weights().copyToAsync(routed, 4L * slots, 0, 4L * slots, stream);
          CudaEvent copied = routingCopied();
          copied.record(stream);
          runRouted(x, xb, tokens, null, rr.ids(), rr.weights(), null, y);
          copied.synchronize();
          int[] ids = new int[slots];
          float[] w = new float[slots];
          java.nio.ByteBuffer bb = routed.buffer();
          bb.asIntBuffer().get(ids);
          bb.position(4 * slots);
          bb.slice().order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(w);
          mark("routing to arrays");
          stream.synchronize();
          mark("end (sync)");
          return new MoeLayer.Output(tokens, hidden, topK, null, ids, w);
        }
      }
    }
  }

  /**
   * The expert stage for a given routing, TensorRT {@code IMoELayer}'s interface (hidden states, selected
   * experts, scores; moe-ops-semantics §11): {@code y[t] = Σ_j scores[t][j] · Expert_{ids[t][j]}(x'[t])}
   * (plus the shared expert where the block has one), no router, no renormalisation; the same order and
   * roundings as {@link ExpertMixture}. Static FP8 as in {@link ExpertFfn#create}: {@code x' = DQ(Q(x,
   * inputScale))} (on the host) and the activation {@code DQ(Q(a, mulScales[e]))} (in the GEMM epilogue).
   *
   * <p>Difference from TensorRT: a token must not list the same expert twice (the permute's maps hold
   * one row per (token, expert)); TensorRT computes each duplicate slot.
   *
   * @param ids {@code [tokens, topK]} distinct expert ids per token
   * @param scores {@code [tokens, topK]} weights of the slots
   * @param inputScale the input's FP8 scale, or NaN for none
   * @param mulScales {@code [E]} per-expert activation FP8 scales, or null for none
   * @return y fp32 {@code [tokens, H]}
   */
  public float[] forwardRouted(float[] x, int tokens, int[] ids, float[] scores, float inputScale, float[] mulScales) {
    checkInput(x == null ? -1 : x.length, tokens);
    long slots = (long) tokens * topK;
    if (ids == null || ids.length != slots) {
      throw new IllegalArgumentException("ids must be [tokens=" + tokens + ", topK=" + topK + "] = " + slots
          + " ints, got " + (ids == null ? "null" : ids.length));
    }
    if (scores == null || scores.length != slots) {
      throw new IllegalArgumentException("scores must be [tokens=" + tokens + ", topK=" + topK + "] = " + slots
          + " floats, got " + (scores == null ? "null" : scores.length));
    }
    for (int t = 0; t < tokens; t++) {
      for (int j = 0; j < topK; j++) {
        int id = ids[t * topK + j];
        if (id < 0 || id >= numExperts) {
          throw new IllegalArgumentException("ids[token " + t + "][slot " + j + "] = " + id
              + " is not an expert id in [0, " + numExperts + ")");
        }
        for (int q = 0; q < j; q++) {
          if (ids[t * topK + q] == id) {
            throw new IllegalArgumentException("ids[token " + t + "] lists expert " + id + " twice (slots " + q
                + " and " + j + "): the GPU layer needs distinct experts per token");
          }
        }
      }
    }
    if (!Float.isNaN(inputScale) && !(inputScale > 0 && Float.isFinite(inputScale))) {
      throw new IllegalArgumentException("input activation scale must be finite and > 0 (or NaN for none), got "
          + inputScale);
    }
    if (mulScales != null) {
      if (mulScales.length != numExperts) {
        throw new IllegalArgumentException("mulScales must be [E=" + numExperts + "], got " + mulScales.length);
      }
      for (int e = 0; e < numExperts; e++) {
        if (!(mulScales[e] > 0 && Float.isFinite(mulScales[e]))) {
          throw new IllegalArgumentException("mulScales[" + e + "] (fcDownActivationScale) must be finite and > 0, got "
              + mulScales[e]);
        }
      }
    }
    float[] xin = x.clone();
    for (int i = 0; i < xin.length; i++) {
      float v = Float.isNaN(inputScale) ? xin[i] : LayerNumerics.fp8QuantDequant(xin[i], inputScale);
      xin[i] = compute == Compute.BF16 ? LayerNumerics.bf16(v) : v;
    }
    float[] y = new float[xin.length];
    if (tokens == 0) {
      return y;
    }
    synchronized (this) {
      ensureOpen();
      Cuda.setDevice(device);
      try (DeviceBuffer xd = work.upload(xin, "x fp32"); DeviceBuffer yd = work.allocate(4L * y.length, "y");
          DeviceBuffer ms = mulScales == null ? null : work.upload(mulScales, "activation FP8 scales")) {
        run(xd, tokens, new Router.Routed(ids.clone(), scores.clone()), ms, yd);
        yd.copyTo(y);
      }
    }
    return y;
  }

  private void checkInput(int length, int tokens) {
    if (tokens < 0) {
      throw new IllegalArgumentException("tokens must be >= 0, got " + tokens);
    }
    long expected = (long) tokens * hidden;
    if (expected > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("[tokens=" + tokens + ", hidden=" + hidden + "] has " + expected
          + " elements, more than a Java array holds");
    }
    if (length == -1) {
      throw new IllegalArgumentException("x must not be null");
    }
    if (length == -2) {
      throw new IllegalArgumentException("xHost must hold [tokens=" + tokens + ", hidden=" + hidden + "] = "
          + 4 * expected + " bytes");
    }
    if (length != expected) {
      throw new IllegalArgumentException("x must be [tokens=" + tokens + ", hidden=" + hidden + "] = " + expected
          + " floats, got " + length);
    }
  }

  /** The device pipeline on fp32 x already on the device, routed on the host; y fp32 [T, H]. Caller holds the lock. */
  private void run(DeviceBuffer xd, int tokens, Router.Routed r, DeviceBuffer yd) {
    run(xd, tokens, r, null, yd);
  }

  private void run(DeviceBuffer xd, int tokens, Router.Routed r, DeviceBuffer mulScale, DeviceBuffer yd) {
    long n = (long) tokens * hidden;
    try (DeviceBuffer xb = work.allocate(2 * n, "x bf16");
        DeviceBuffer ids = work.upload(r.ids(), "topk ids");
        DeviceBuffer w = work.upload(r.weights(), "topk weights")) {
      FormatsGpu.bf16Encode(xd, xb, n, stream);
      int[] tpe = new int[numExperts];
      for (int id : r.ids()) {
        tpe[id]++;
      }
      runRouted(xd, xb, tokens, tpe, ids, w, mulScale, yd);
    }
  }

  /**
   * Permute, expert FFNs, shared expert, combine: routing given on the device; {@code tpe} its expert histogram
   * on the host, or null (counted on the device by the permute maps).
   */
  private void runRouted(DeviceBuffer xd, DeviceBuffer xb, int tokens, int[] tpe, DeviceBuffer ids, DeviceBuffer w,
      DeviceBuffer mulScale, DeviceBuffer yd) {
    boolean bf16 = compute == Compute.BF16;
    long n = (long) tokens * hidden;
    try (MoePermuteGpu.DeviceMaps maps = MoePermuteGpu.maps(work, ids, w, tokens, topK, numExperts, tpe, 1)) {
      mark("permute maps (sync)");
      // FP8 experts: the tokens are quantized once (1×128 per row, the same codes and scales a permuted row gets)
      // and the e4m3 rows and their scales permuted, instead of permuting bf16 rows and quantizing k× as many
      DeviceBuffer xq = null;
      DeviceBuffer xs = null;
      DeviceBuffer xp = null;
      DeviceBuffer xsp = null;
      DeviceBuffer o = null;
      DeviceBuffer so = null;
      try {
        long scaleRow = 4L * ActQuantGpu.scaleCols(hidden);
        if (experts.fp8()) {
          xq = work.allocate(n, "x e4m3 tokens");
          xs = work.allocate(scaleRow * tokens, "x 1x128 scales tokens");
          ActQuantGpu.quantize(BlockFp8.ScaleRule.DEEPSEEK, ActQuantGpu.Input.BF16, xb, tokens, hidden, false, xq, xs,
              stream);
          xp = MoePermuteGpu.permuteRows(work, maps, xq, hidden);
          xsp = MoePermuteGpu.permuteRows(work, maps, xs, scaleRow);
        } else {
          xp = MoePermuteGpu.permuteRows(work, maps, xb, 2L * hidden);
        }
        mark("permute rows");
        o = work.allocate((bf16 ? 2L : 4L) * maps.rows * hidden, "expert rows");
        if (experts.fp8()) {
          ffnFp8Quantized(experts, xp, xsp, maps.expertRowOffsets, mulScale, o);
        } else {
          ffn(experts, xp, maps.expertRowOffsets, mulScale, o);
        }
        mark("expert FFN");
        if (shared != null) {
          so = work.allocate((bf16 ? 2L : 4L) * n, "shared rows");
          if (shared.fp8() && xq != null) {
            ffnFp8Quantized(shared, xq, xs, new int[] {0, tokens}, null, so);
          } else {
            ffn(shared, xb, new int[] {0, tokens}, so);
          }
          mark("shared expert");
        }
        combine(o, hidden, bf16, ids, w, maps.rowmap, topK, numExperts, tokens, hidden, so, hidden, xd, sharedGate, bf16,
            yd, stream);
        mark("combine");
      } finally {
        DeviceWeights.closeAll(so, o, xsp, xp, xs, xq);
      }
    }
  }

  /** gate/up + activation, then down, for rows grouped by {@code offsets}; out fp32 or bf16 [R, H]. */
  private void ffn(DeviceWeights dw, DeviceBuffer xp, int[] offsets, DeviceBuffer out) {
    ffn(dw, xp, offsets, null, out);
  }

  private void ffn(DeviceWeights dw, DeviceBuffer xp, int[] offsets, DeviceBuffer mulScale, DeviceBuffer out) {
    if (dw.fp8()) {
      ffnFp8(dw, xp, offsets, mulScale, out);
      return;
    }
    if (dw.fp4 != null) {
      ffnFp4(dw, xp, offsets, mulScale, out);
      return;
    }
    boolean bf16 = compute == Compute.BF16;
    long rows = offsets[offsets.length - 1];
    try (DeviceBuffer act = work.allocate(2L * rows * dw.ip, "activations bf16")) {
      GroupedGemm.gemm(work, xp, hidden, offsets, dw.gateUp, hidden, 2 * dw.ip, hidden, dw.gateUpBias,
          GroupedGemm.Epilogue.SWIGLU, bf16, activation, mulScale, act, dw.ip);
      mark("gate/up GEMM");
      GroupedGemm.gemm(work, act, dw.ip, offsets, dw.down, dw.ip, hidden, dw.ip, dw.downBias,
          bf16 ? GroupedGemm.Epilogue.STORE_BF16 : GroupedGemm.Epilogue.STORE_F32, bf16, null, out, hidden);
      mark("down GEMM");
    }
  }

  /**
   * The FP8 expert FFN: x rows and the activations quantized per 1×128 group (DeepSeek {@code act_quant},
   * no pow2) on the device, then the block-scaled FP8 GEMMs with the same epilogues as bf16.
   */
  private void ffnFp8(DeviceWeights dw, DeviceBuffer xp, int[] offsets, DeviceBuffer mulScale, DeviceBuffer out) {
    long rows = offsets[offsets.length - 1];
    try (DeviceBuffer xq = work.allocate(rows * hidden, "x e4m3");
        DeviceBuffer xs = work.allocate(4 * rows * ActQuantGpu.scaleCols(hidden), "x 1x128 scales")) {
      ActQuantGpu.quantize(BlockFp8.ScaleRule.DEEPSEEK, ActQuantGpu.Input.BF16, xp, rows, hidden, false, xq, xs, stream);
      ffnFp8Quantized(dw, xq, xs, offsets, mulScale, out);
    }
  }

  /** The FP8 expert FFN on rows already quantized 1×128 ({@code xq} e4m3 {@code [R, H]}, {@code xs} its scales). */
  private void ffnFp8Quantized(DeviceWeights dw, DeviceBuffer xq, DeviceBuffer xs, int[] offsets, DeviceBuffer mulScale,
      DeviceBuffer out) {
    boolean bf16 = compute == Compute.BF16;
    long rows = offsets[offsets.length - 1];
    BlockFp8.ScaleRule rule = BlockFp8.ScaleRule.DEEPSEEK;
    try (DeviceBuffer act = work.allocate(2L * rows * dw.ip, "activations bf16");
        DeviceBuffer aq = work.allocate(rows * dw.ip, "activations e4m3");
        DeviceBuffer as = work.allocate(4 * rows * ActQuantGpu.scaleCols(dw.ip), "activations 1x128 scales")) {
      GroupedGemmFp8.gemm(work, xq, hidden, xs, offsets, dw.gateUpQ, hidden, dw.gateUpS, 2 * dw.ip, hidden,
          dw.gateUpBias, GroupedGemm.Epilogue.SWIGLU, bf16, activation, mulScale, act, dw.ip);
      ActQuantGpu.quantize(rule, ActQuantGpu.Input.BF16, act, rows, dw.ip, false, aq, as, stream);
      GroupedGemmFp8.gemm(work, aq, dw.ip, as, offsets, dw.downQ, dw.ip, dw.downS, hidden, dw.ip, dw.downBias,
          bf16 ? GroupedGemm.Epilogue.STORE_BF16 : GroupedGemm.Epilogue.STORE_F32, bf16, null, null, out, hidden);
    }
  }

  /** The FP4-weight expert FFN: bf16 rows, the weights dequantized inside both grouped GEMMs. */
  private void ffnFp4(DeviceWeights dw, DeviceBuffer xp, int[] offsets, DeviceBuffer mulScale, DeviceBuffer out) {
    if (mulScale != null) {
      throw new IllegalStateException("GPU layer: FP4 GEMMs have no static FP8 activation scale (TensorRT's "
          + "fcDownActivationScale); use GemmPrecision.BF16 for this layer");
    }
    boolean bf16 = compute == Compute.BF16;
    long rows = offsets[offsets.length - 1];
    DeviceWeights.Fp4 q = dw.fp4;
    int blk = GroupedGemmFp4.block(q.format());
    try (DeviceBuffer act = work.allocate(2L * rows * dw.ip, "activations bf16")) {
      GroupedGemmFp4.gemm(work, xp, hidden, offsets, q.format(), q.guCodes(), hidden / 2, q.guScales(), hidden / blk,
          q.guCol(), 2 * dw.ip, hidden, dw.gateUpBias, GroupedGemm.Epilogue.SWIGLU, bf16, activation, act, dw.ip);
      GroupedGemmFp4.gemm(work, act, dw.ip, offsets, q.format(), q.dCodes(), dw.ip / 2, q.dScales(), dw.ip / blk,
          q.dCol(), hidden, dw.ip, dw.downBias, bf16 ? GroupedGemm.Epilogue.STORE_BF16 : GroupedGemm.Epilogue.STORE_F32,
          bf16, null, out, hidden);
    }
  }

  /**
   * The routed expert stage alone (benchmarks, callers with rows already permuted on the device):
   * {@code out[r] = Expert_e(xp[r])} for the rows of each expert segment, asynchronous on {@link #stream()}.
   *
   * @param xp bf16 {@code [R, H]} permuted rows
   * @param offsets host {@code [E+1]} segment offsets, {@code R = offsets[E]}
   * @param out {@code [R, H]}: bf16 for {@link Compute#BF16}, else fp32
   */
  public void expertFfn(DeviceBuffer xp, int[] offsets, DeviceBuffer out) {
    if (offsets == null || offsets.length != numExperts + 1) {
      throw new IllegalArgumentException("GPU layer: offsets must be [" + (numExperts + 1) + "], got "
          + (offsets == null ? "null" : offsets.length));
    }
    synchronized (this) {
      ensureOpen();
      Cuda.setDevice(device);
      ffn(experts, xp, offsets, out);
    }
  }

  /**
   * A copy of routed expert {@code e}'s device weights as bf16 bits (benchmark validation): the
   * gate/up matrix {@code [2·Ip, H]} in {@link GroupedGemm#interleaveGateUp}'s layout, or down {@code [H, Ip]}.
   */
  public short[] expertWeightsBf16(int e, boolean gateUp) {
    if (experts.fp8() || experts.fp4 != null) {
      throw new IllegalStateException("GPU layer: a " + gemm + " layer keeps quantized weights only");
    }
    if (e < 0 || e >= numExperts) {
      throw new IllegalArgumentException("GPU layer: expert must be in [0, " + numExperts + "), got " + e);
    }
    long n = gateUp ? 2L * experts.ip * hidden : (long) hidden * experts.ip;
    if (n > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("GPU layer: expert " + e + " weights have " + n + " values, more than an array holds");
    }
    synchronized (this) {
      ensureOpen();
      Cuda.setDevice(device);
      return (gateUp ? experts.gateUp : experts.down).view(2 * n * e, 2 * n).toShorts((int) n);
    }
  }

  /** Allocates scratch on the layer's stream (benchmarks); the caller closes it. */
  public DeviceBuffer allocate(long bytes, String what) {
    return work.allocate(bytes, what);
  }

  /** Fills {@code n} bf16 values of {@code buf} with deterministic uniform values in {@code [-scale, scale)}. */
  public void fillRandomBf16(DeviceBuffer buf, long n, long seed, float scale) {
    if (buf == null || n < 0 || buf.size() < 2 * n) {
      throw new IllegalArgumentException("GPU layer: fillRandomBf16 needs " + 2 * n + " bytes, got "
          + (buf == null ? "null" : buf.size() + " bytes"));
    }
    fillRandomBf16Native(buf.address(), n, seed, scale, stream.handle());
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException("GPU layer already closed");
    }
  }

  /** Frees the device weights and the stream. */
  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      Cuda.setDevice(device);
      try {
        if (routingHost != null) {
          routingHost.close();
          routingHost = null;
        }
        if (routingCopied != null) {
          routingCopied.close();
          routingCopied = null;
        }
        for (DeviceWeights dw : new DeviceWeights[] {experts, shared}) {
          if (dw != null) {
            dw.close();
          }
        }
        if (sharedGate != null) {
          sharedGate.close();
        }
        DeviceWeights.closeAll(routerWeight, routerBias, correctionBias);
      } finally {
        releaseQuietly();
      }
    }
  }

  /** Stage marks of the calls on this layer (benchmarks; null: none); guarded by this. */
  private StreamTimeline timeline;

  /**
   * Records the device and host time of every stage of the following calls into {@code t} (null stops):
   * a diagnostic for benchmarks ({@code LayerBench}, {@code moespark.bench.trace}); each mark is one CUDA event.
   */
  public synchronized void trace(StreamTimeline t) {
    timeline = t;
  }

  private void mark(String stage) {
    if (timeline != null) {
      timeline.mark(stage, stream);
    }
  }

  /** forwardDevice's pinned routing copy, kept across calls (pinned allocations are slow); guarded by this. */
  private PinnedBuffer routingHost;

  /** Recorded behind forwardDevice's routing copies into {@link #routingHost}; guarded by this. */
  private CudaEvent routingCopied;

  private CudaEvent routingCopied() {
    if (routingCopied == null) {
      routingCopied = CudaEvent.create();
    }
    return routingCopied;
  }

  private PinnedBuffer routingHost(long bytes) {
    if (routingHost == null || routingHost.size() < bytes) {
      if (routingHost != null) {
        routingHost.close();
      }
      routingHost = PinnedBuffer.allocate(Math.max(bytes, 1L << 16));
    }
    return routingHost;
  }

  /** Frees everything after a failed upload; leak reports become suppressed exceptions of {@code cause}. */
  private void releaseAfterFailure(RuntimeException cause) {
    try {
      releaseQuietly();
    } catch (RuntimeException e) {
      cause.addSuppressed(e);
    }
  }

  private void releaseQuietly() {
    try {
      work.close();
    } finally {
      try {
        weightsAlloc.close();
      } finally {
        stream.close();
      }
    }
  }

  /**
   * The combine kernel, asynchronous on {@code stream} ({@code runRouted}'s last step; its tests launch it alone): y[t] =
   * Σ over t's slots in ascending expert id of w·o[rowmap[t, id]], then + the (gated) shared output, in the CPU
   * layer's order and roundings. Buffers as {@code moe_layer.cuh}'s CombineArgs; shared, x, sharedGate may be null.
   */
  static void combine(DeviceBuffer o, long ldo, boolean oBf16, DeviceBuffer ids, DeviceBuffer weights,
      DeviceBuffer rowmap, int topK, int experts, long tokens, long hidden, DeviceBuffer shared, long lds,
      DeviceBuffer x, DeviceBuffer sharedGate, boolean bf16, DeviceBuffer y, CudaStream stream) {
    combine0(o.address(), ldo, oBf16, ids.address(), weights.address(), rowmap.address(), topK, experts, tokens, hidden,
        shared == null ? 0 : shared.address(), lds, x == null ? 0 : x.address(),
        sharedGate == null ? 0 : sharedGate.address(), bf16, y.address(), stream.handle());
  }

  private static native void combine0(long o, long ldo, boolean oBf16, long ids, long weights, long rowmap, int topK,
      int experts, long tokens, long hidden, long shared, long lds, long x, long sharedGate, boolean bf16, long y,
      long stream);

  private static native void fillRandomBf16Native(long p, long n, long seed, float scale, long stream);
}
