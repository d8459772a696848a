package org.moespark.spark;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.spark.PartitionEvaluator;
import org.apache.spark.PartitionEvaluatorFactory;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.execution.metric.SQLMetric;
import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import org.apache.spark.util.TaskCompletionListener;
import org.moespark.layer.PinnedStaging;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.collection.AbstractIterator;
import scala.collection.Iterator;

/**
 * The per-partition work of {@link MoeScoreExec}: for each input {@link ColumnarBatch}, read every call's
 * embedding column straight from the column vectors ({@link EmbeddingReader}: no row conversion, no
 * boxing), score the good rows in chunks of at most
 * {@code batchRows}, and return the input columns plus one result column per call.
 *
 * <p>Staged path ({@link BatchScorer#staged}: a scorer with a {@link BatchScorer#deviceLayer}, whose
 * {@link Staging} is a {@link PinnedStaging}; tests run the same path on the CPU through {@link HostStaging}).
 * On the GPU: rows are packed from the column vectors
 * straight into the pinned input of a {@link PinnedStaging} slot ({@link EmbeddingPacker}: one memory copy
 * per row, bad rows handled by the same policy as on the CPU), uploaded on the staging's copy stream while
 * the previous chunk computes, run with {@code MoeLayerGpu.forwardDevice} (device routing), and y comes back
 * by DMA into the slot's pinned output, from where one memory copy per run of consecutive good rows puts it
 * into the off-heap result vector. Two slots alternate: chunk i+1 is packed and its upload enqueued before
 * chunk i computes. The staging (pinned memory allocated once) is borrowed for the partition from
 * {@link StagingPool}, which keeps one pool per scorer. The result vector is deliberately not page-locked: registering it per task
 * ({@code cudaHostRegister}, 128 times in a 2M-row job) stalled the device's work 6-17x on the H100
 * (benchmarks/spark-gpu.md).
 */
final class MoeScoreEvaluatorFactory implements PartitionEvaluatorFactory<ColumnarBatch, ColumnarBatch> {
  private static final long serialVersionUID = 1L;

  private final List<CallPlan> calls;
  private final Map<String, SQLMetric> metrics;

  MoeScoreEvaluatorFactory(List<CallPlan> calls, Map<String, SQLMetric> metrics) {
    this.calls = List.copyOf(calls);
    this.metrics = Map.copyOf(metrics);
  }

  @Override
  public PartitionEvaluator<ColumnarBatch, ColumnarBatch> createEvaluator() {
    return (partitionIndex, inputs) -> new Run(partitionIndex, inputs.head(), calls, metrics);
  }

  /** Iterator over the output batches of one partition. */
  private static final class Run extends AbstractIterator<ColumnarBatch> {
    private static final Logger LOG = LoggerFactory.getLogger(MoeScoreExec.class);

    private final int partition;
    private final Iterator<ColumnarBatch> in;
    private final List<CallPlan> calls;
    private final Map<String, SQLMetric> m;
    private final BatchScorer[] scorers;
    private final WritableColumnVector[] outs;
    private final Staging[] staging;
    private final int[][][] rowsOf;
    private long rowBase;
    private long badRows;
    private long skipped;
    private long nulled;
    private String firstBad;

    Run(int partition, Iterator<ColumnarBatch> in, List<CallPlan> calls, Map<String, SQLMetric> metrics) {
      this.partition = partition;
      this.in = in;
      this.calls = calls;
      this.m = metrics;
      this.scorers = new BatchScorer[calls.size()];
      this.outs = new WritableColumnVector[calls.size()];
      this.staging = new Staging[calls.size()];
      this.rowsOf = new int[calls.size()][][];
      TaskContext tc = TaskContext.get();
      if (tc != null) {
        tc.addTaskCompletionListener((TaskCompletionListener) ctx -> finish());
      }
    }

    @Override
    public boolean hasNext() {
      boolean more = in.hasNext();
      if (!more) {
        releaseStaging(); // the partition is done: other tasks may use the pinned buffers now
      }
      return more;
    }

    private void releaseStaging() {
      for (int c = 0; c < staging.length; c++) {
        if (staging[c] != null) {
          StagingPool.giveBack(scorers[c], staging[c]);
          staging[c] = null;
        }
      }
    }

    @Override
    public ColumnarBatch next() {
      ColumnarBatch batch = in.next();
      long t0 = System.nanoTime();
      int n = batch.numRows();
      m.get("numInputRows").add(n);
      boolean[] drop = new boolean[n];
      long scorerNanos = 0;
      for (int c = 0; c < calls.size(); c++) {
        long s0 = System.nanoTime();
        scorer(c); // the first batch loads the model or waits for another task loading it: not host work
        scorerNanos += System.nanoTime() - s0;
        scorerNanos += scoreCall(c, batch, n, drop);
      }
      int kept = 0;
      int[] sel = new int[n];
      for (int r = 0; r < n; r++) {
        if (!drop[r]) {
          sel[kept++] = r;
        }
      }
      int width = batch.numCols() + calls.size();
      ColumnVector[] cols = new ColumnVector[width];
      for (int i = 0; i < batch.numCols(); i++) {
        cols[i] = batch.column(i);
      }
      for (int c = 0; c < calls.size(); c++) {
        cols[batch.numCols() + c] = outs[c];
      }
      if (kept < n) {
        for (int i = 0; i < width; i++) {
          cols[i] = new SelectedColumnVector(cols[i], sel, kept);
        }
      }
      rowBase += n;
      m.get("numOutputRows").add(kept);
      m.get("hostTime").add(System.nanoTime() - t0 - scorerNanos);
      return new ColumnarBatch(cols, kept);
    }

    /** Scores call {@code c} on the batch; returns the nanoseconds spent inside the scorer. */
    private long scoreCall(int c, ColumnarBatch batch, int n, boolean[] drop) {
      CallPlan call = calls.get(c);
      BatchScorer scorer = scorer(c);
      if (scorer.staged()) {
        return scoreCallStaged(c, batch, n, drop, scorer);
      }
      int hidden = scorer.hiddenSize();
      int topK = scorer.topK();
      WritableColumnVector out = output(c, n, hidden, topK, false);
      ColumnVector col = batch.column(call.inputOrdinal());
      int chunk = Math.max(1, Math.min(call.settings().batchRowsFor(false), n));
      float[] x = new float[Math.multiplyExact(chunk, hidden)];
      int[] rowsOf = new int[chunk];
      int filled = 0;
      long scorerNanos = 0;
      for (int r = 0; r < n; r++) {
        String why = EmbeddingReader.read(col, call.inputKind(), r, hidden, x, filled * hidden);
        if (why != null) {
          bad(call, r, why, drop, out);
          continue;
        }
        rowsOf[filled++] = r;
        if (filled == chunk) {
          scorerNanos += run(scorer, call, x, filled, rowsOf, out, hidden, topK);
          filled = 0;
        }
      }
      if (filled > 0) {
        scorerNanos += run(scorer, call, Arrays.copyOf(x, filled * hidden), filled, rowsOf, out, hidden, topK);
      }
      return scorerNanos;
    }

    /**
     * The GPU path of call {@code c} (see the class comment); returns the nanoseconds not spent packing or
     * unpacking (GPU compute and waits), so that {@code hostTime} stays the host-side work.
     */
    private long scoreCallStaged(int c, ColumnarBatch batch, int n, boolean[] drop, BatchScorer scorer) {
      CallPlan call = calls.get(c);
      int hidden = scorer.hiddenSize();
      int topK = scorer.topK();
      String backend = scorer.backend();
      WritableColumnVector out = output(c, n, hidden, topK, true);
      int cap = Math.max(1, Math.min(call.settings().batchRowsFor(true), (int) (Integer.MAX_VALUE / (4L * hidden))));
      Staging st = staging(c, scorer, cap);
      int chunk = Math.min(cap, Math.max(1, n));
      if (rowsOf[c] == null || rowsOf[c][0].length < chunk) {
        rowsOf[c] = new int[][] {new int[chunk], new int[chunk]};
      }
      int[][] rows = rowsOf[c];
      scores(call, out).arrayData().reserve(Math.multiplyExact(Math.max(n, cap), hidden)); // all n rows: a batch may exceed cap
      EmbeddingPacker packer = new EmbeddingPacker(batch.column(call.inputOrdinal()), call.inputKind(), hidden);
      int[] filled = new int[2];
      PinnedStaging.Result[] pending = new PinnedStaging.Result[2];
      long deviceNanos = 0;
      int[] next = {0};
      filled[0] = pack(packer, call, st, 0, rows[0], chunk, next, n, drop, out);
      if (filled[0] > 0) {
        st.upload(0, filled[0]);
      }
      int cur = 0;
      while (filled[cur] > 0) {
        int other = 1 - cur;
        if (pending[other] != null) { // the other slot's last chunk: its y comes back while we pack
          deviceNanos += drain(st, other, pending[other], rows[other], out, call, hidden, topK, backend);
          pending[other] = null;
        }
        filled[other] = next[0] < n ? pack(packer, call, st, other, rows[other], chunk, next, n, drop, out) : 0;
        if (filled[other] > 0) {
          st.upload(other, filled[other]); // overlaps the compute of the current slot
        }
        long t1 = System.nanoTime();
        pending[cur] = st.compute(cur); // y comes back into the slot's pinned output
        deviceNanos += System.nanoTime() - t1;
        cur = other;
      }
      for (int k = 0; k < 2; k++) {
        int sl = (cur + k) % 2; // the older pending slot first
        if (pending[sl] != null) {
          deviceNanos += drain(st, sl, pending[sl], rows[sl], out, call, hidden, topK, backend);
          pending[sl] = null;
        }
      }
      return deviceNanos;
    }

    /** Packs the next good rows from {@code next[0]} into the slot's pinned input; returns how many. */
    private int pack(EmbeddingPacker packer, CallPlan call, Staging st, int slot, int[] rows, int chunk,
        int[] next, int n, boolean[] drop, WritableColumnVector out) {
      long base = st.inputAddress(slot);
      long rowBytes = 4L * st.hiddenSize();
      int filled = 0;
      int r = next[0];
      for (; r < n && filled < chunk; r++) {
        String why = packer.pack(r, base + rowBytes * filled);
        if (why != null) {
          bad(call, r, why, drop, out);
          continue;
        }
        rows[filled++] = r;
      }
      next[0] = r;
      return filled;
    }

    /** Waits for the slot's y, writes it and the routing into the result vectors; returns the wait in ns. */
    private long drain(Staging st, int slot, PinnedStaging.Result res, int[] rows, WritableColumnVector out,
        CallPlan call, int hidden, int topK, String backend) {
      long t0 = System.nanoTime();
      long d2h = st.awaitOutput(slot);
      long waited = System.nanoTime() - t0;
      int count = res.rows();
      ResultUnpacker.putFloatRowsFrom(scores(call, out), rows, count, st.outputAddress(slot), hidden);
      putRouting(call, out, rows, count, res.topkIds(), res.topkWeights(), topK);
      m.get("numTokens").add(count);
      m.get("numBatches").add(1);
      m.get("gpu".equals(backend) ? "numGpuBatches" : "numCpuBatches").add(1);
      m.get("hostToDeviceTime").add(res.hostToDeviceNanos());
      m.get("computeTime").add(res.computeNanos());
      m.get("deviceToHostTime").add(d2h);
      m.get("gpuWaitTime").add(res.waitNanos() + waited);
      return waited;
    }

    /** The {@code array<float>} vector of y in call {@code call}'s result vector {@code out}. */
    private static WritableColumnVector scores(CallPlan call, WritableColumnVector out) {
      return call.routed() ? (WritableColumnVector) out.getChild(0) : out;
    }

    /** For {@code moe_score_routed}: chunk rows' top-k ids and weights into the result struct's vectors. */
    private static void putRouting(CallPlan call, WritableColumnVector out, int[] rows, int count, int[] ids,
        float[] weights, int topK) {
      if (call.routed()) {
        ResultUnpacker.putIntRows((WritableColumnVector) out.getChild(1), rows, count, ids, topK);
        ResultUnpacker.putFloatRows((WritableColumnVector) out.getChild(2), rows, count, weights, topK);
      }
    }

    private Staging staging(int c, BatchScorer scorer, int cap) {
      if (staging[c] != null && staging[c].capacity() < cap) {
        StagingPool.giveBack(scorer, staging[c]);
        staging[c] = null;
      }
      if (staging[c] == null) {
        staging[c] = StagingPool.borrow(scorer, cap);
      }
      return staging[c];
    }

    private long run(BatchScorer scorer, CallPlan call, float[] x, int rows, int[] rowsOf, WritableColumnVector out,
        int hidden, int topK) {
      long t0 = System.nanoTime();
      BatchScorer.Scores s = scorer.score(x, rows);
      long dt = System.nanoTime() - t0;
      if (s.rows() != rows || s.hidden() != hidden || s.topK() != topK) {
        throw new IllegalStateException(call.name() + ": scorer returned [rows=" + s.rows() + ", hidden=" + s.hidden()
            + ", topK=" + s.topK() + "], expected [" + rows + ", " + hidden + ", " + topK + "]");
      }
      ResultUnpacker.putFloatRows(scores(call, out), rowsOf, rows, s.y(), hidden);
      putRouting(call, out, rowsOf, rows, s.topkIds(), s.topkWeights(), topK);
      m.get("numTokens").add(rows);
      m.get("numBatches").add(1);
      m.get("gpu".equals(scorer.backend()) ? "numGpuBatches" : "numCpuBatches").add(1);
      long accounted = s.hostToDeviceNanos() + s.computeNanos() + s.deviceToHostNanos();
      m.get("hostToDeviceTime").add(s.hostToDeviceNanos());
      m.get("computeTime").add(accounted == 0 ? dt : s.computeNanos());
      m.get("deviceToHostTime").add(s.deviceToHostNanos());
      return dt;
    }

    private void bad(CallPlan call, int r, String why, boolean[] drop, WritableColumnVector out) {
      String where = call.name() + ": bad input row " + (rowBase + r) + " of partition " + partition
          + " (0-based position in the partition's input): " + why;
      BadRowPolicy policy = call.settings().badRows();
      if (policy == BadRowPolicy.ERROR) {
        throw new IllegalArgumentException(where + " (" + MoeConf.BAD_ROWS + "=error; use skip or null to keep going)");
      }
      badRows++;
      m.get("numBadRows").add(1);
      if (firstBad == null) {
        firstBad = where;
      }
      out.putNull(r);
      if (policy == BadRowPolicy.SKIP) {
        if (!drop[r]) {
          skipped++;
          m.get("numSkippedRows").add(1);
        }
        drop[r] = true;
      } else {
        nulled++;
        m.get("numNulledRows").add(1);
      }
    }

    private BatchScorer scorer(int c) {
      if (scorers[c] == null) {
        CallPlan call = calls.get(c);
        ModelCache.Loaded l = ModelCache.get(call.uri(), call.layer(), call.settings(), taskGpu());
        m.get("modelLoadTime").add(l.loadNanos());
        scorers[c] = l.scorer();
      }
      return scorers[c];
    }

    /**
     * The (reused) result vector of call {@code c}, reset for a batch of {@code n} rows; off-heap for the GPU
     * path (results are copied in from pinned memory).
     */
    private WritableColumnVector output(int c, int n, int hidden, int topK, boolean offHeap) {
      CallPlan call = calls.get(c);
      WritableColumnVector v = outs[c];
      if (v != null && (v instanceof OffHeapColumnVector) != offHeap) {
        v.close();
        v = null;
      }
      if (v == null) {
        org.apache.spark.sql.types.DataType t = call.routed() ? MoeScoreExpr.ROUTED_TYPE : MoeScoreExpr.SCORE_TYPE;
        v = offHeap ? new OffHeapColumnVector(Math.max(n, 1), t) : new OnHeapColumnVector(Math.max(n, 1), t);
        outs[c] = v;
      } else {
        v.reset();
      }
      v.reserve(Math.max(n, 1));
      if (call.routed()) {
        reserveArray((WritableColumnVector) v.getChild(0), n, hidden);
        reserveArray((WritableColumnVector) v.getChild(1), n, topK);
        reserveArray((WritableColumnVector) v.getChild(2), n, topK);
      } else {
        reserveArray(v, n, hidden);
      }
      return v;
    }

    private static void reserveArray(WritableColumnVector v, int n, int width) {
      v.reserve(Math.max(n, 1));
      v.arrayData().reserve(Math.max(1, Math.multiplyExact(n, width)));
    }

    private static int taskGpu() {
      TaskContext tc = TaskContext.get();
      if (tc == null) {
        return -1;
      }
      ResourceInformation gpu = tc.resourcesJMap().get("gpu");
      if (gpu == null || gpu.addresses().length == 0) {
        return -1;
      }
      try {
        return Integer.parseInt(gpu.addresses()[0].trim());
      } catch (NumberFormatException e) {
        throw new IllegalStateException("task gpu resource address '" + gpu.addresses()[0] + "' is not a device ordinal",
            e);
      }
    }

    private void finish() {
      releaseStaging(); // waits for copies in flight (a failed task) before the staging goes back to the pool
      for (WritableColumnVector v : outs) {
        if (v != null) {
          v.close();
        }
      }
      if (badRows > 0) {
        LOG.warn("moe_score: partition {}: {} bad inputs, counted per call ({} rows skipped, {} results nulled); "
            + "first: {}", partition, badRows, skipped, nulled, firstBad);
      }
    }
  }
}
