package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.moespark.ops.MoePermuteTest.assertMessage;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.moespark.formats.Bf16;
import org.moespark.testing.Tolerance;

class MoeUnpermuteTest {

  static short bf(float f) {
    short b = Bf16.encode(f);
    if (Bf16.decode(b) != f) {
      throw new AssertionError(f + " is not a bf16 value");
    }
    return b;
  }

  /** One token, E experts, each a distinct row (row r = expert r), H = 1. */
  static MoeUnpermute.Result<short[]> oneToken(short[] rows, float[] probs, boolean mp, boolean weighted) {
    int e = rows.length;
    int[] rowmap = new int[e];
    int[] route = new int[e];
    for (int i = 0; i < e; i++) {
      rowmap[i] = i;
      route[i] = i;
    }
    return MoeUnpermute.unpermute(rows, e, 1, rowmap, route, probs, 1, e, e, mp, weighted);
  }

  @Test
  void fp32AccumulationRoundsOnceBf16AccumulationRoundsEveryStep() {
    short[] rows = {bf(1f), bf(0x1p-8f), bf(0x1p-8f)};
    float[] p = {1, 1, 1};
    // fp32: 1 + 2^-8 + 2^-8 = 1 + 2^-7, a bf16 value.
    assertEquals(bf(1 + 0x1p-7f), oneToken(rows, p, true, false).hiddenStates()[0]);
    // bf16 per step: 1 + 2^-8 is a tie -> 1.0 (even), twice.
    assertEquals(bf(1f), oneToken(rows, p, false, false).hiddenStates()[0]);
  }

  @Test
  void singleContributorReturnsStoredBitsAndNoContributorGivesPlusZero() {
    short negZero = (short) 0x8000;
    short nan = (short) 0x7FC1; // a NaN with a payload
    short subnormal = (short) 0x0001;
    int[] route = {0, -1, 1, -1, -1, -1, 0, -1};
    // Rows by the permute: 0 = (token 0, expert 0), 1 = (token 3, expert 0), 2 = (token 1, expert 1).
    int[] tpe = {2, 1, 0};
    MoePermute.Maps m = MoePermute.maps(route, new float[] {1, 0, 1, 0, 0, 0, 1, 0}, 4, 2, 3, tpe, 1);
    assertEquals(3, m.rows());
    short[] xu = new short[3 * 3];
    short[] t0 = {negZero, nan, subnormal};
    System.arraycopy(t0, 0, xu, 0, 3);
    short[] t3 = {bf(2f), bf(-3f), negZero};
    System.arraycopy(t3, 0, xu, 3, 3);
    short[] t1 = {bf(0.5f), bf(0.25f), bf(-0f)};
    System.arraycopy(t1, 0, xu, 6, 3);
    MoeUnpermute.Result<short[]> r = MoeUnpermute.unpermute(xu, 3, 3, m.zippedExpertwiseRowmap(), route,
        m.tokenProbUnzipped(), 4, 2, 3);
    short[] want = new short[12];
    System.arraycopy(t0, 0, want, 0, 3);
    System.arraycopy(t1, 0, want, 3, 3);
    // token 2 routed nowhere: +0
    System.arraycopy(t3, 0, want, 9, 3);
    assertArrayEquals(want, r.hiddenStates());
  }

  @Test
  void weightedCombineAppliesTheWeightToEveryContributor() {
    // Single contributor: intended behaviour bf16(3 * 0.5) = 1.5 (upstream's shortcut would return 3).
    assertEquals(bf(1.5f), oneToken(new short[] {bf(3f)}, new float[] {0.5f}, true, true).hiddenStates()[0]);
    // Two contributors: fma(3, 0.5, fma(1, 0.25, 0)) = 1.75.
    assertEquals(bf(1.75f),
        oneToken(new short[] {bf(1f), bf(3f)}, new float[] {0.25f, 0.5f}, true, true).hiddenStates()[0]);
    // bf16 accumulation path with weights: bf16(fma(..)) per step.
    assertEquals(bf(1.75f),
        oneToken(new short[] {bf(1f), bf(3f)}, new float[] {0.25f, 0.5f}, false, true).hiddenStates()[0]);
  }

  @Test
  void fp32OverloadSumsInAscendingExpertOrder() {
    int[] rowmap = {0, 1, 2};
    int[] route = {2, 0, 1}; // slot order must not matter: experts are visited 0, 1, 2
    float[] xu = {0x1p24f, 1f, 1f};
    MoeUnpermute.Result<float[]> r = MoeUnpermute.unpermute(xu, 3, 1, rowmap, route, new float[] {0.5f, 0.25f, 0.25f},
        1, 3, 3, false);
    // (2^24 + 1) + 1 = 2^24 in fp32 (ties to even); descending order would give 2^24 + 2.
    Tolerance.assertBitEqual(r.hiddenStates(), new float[] {0x1p24f}, "ascending-expert sum");
    Tolerance.assertBitEqual(r.expertProbTopk(), new float[] {0.25f, 0.5f, 0.25f}, "probs back in slot order");
  }

  @Test
  void seedExampleRoundTrip() {
    int h = 128;
    Random rnd = new Random(3);
    short[] x = MoePermuteTest.randomBf16(rnd, 3 * h);
    MoePermute.Result<short[]> p = MoePermute.permute(x, 3, h, MoePermuteTest.SEED_ROUTE, MoePermuteTest.SEED_PROB,
        8, 3, new int[] {1, 2, 1}, 2, true);
    // Pre-weight as the seed does: bf16(float(row) * prob).
    short[] weighted = new short[p.hiddenStatesUnzipped().length];
    for (int r = 0; r < p.rows(); r++) {
      for (int c = 0; c < h; c++) {
        weighted[r * h + c] = Bf16.encode(
            Bf16.decode(p.hiddenStatesUnzipped()[r * h + c]) * p.tokenProbUnzipped()[r]);
      }
    }
    MoeUnpermute.Result<short[]> u = MoeUnpermute.unpermute(weighted, p.rows(), h, p.zippedExpertwiseRowmap(),
        MoePermuteTest.SEED_ROUTE, p.tokenProbUnzipped(), 3, 8, 3);
    // The recovered probs equal the input bit for bit (PD-PTEST's md5 check).
    Tolerance.assertBitEqual(u.expertProbTopk(), MoePermuteTest.SEED_PROB, "expert_prob_topk");
    // Tokens 1 and 2 have one expert with prob 1: exact. Token 0: bf16(0.6x) + bf16(0.4x) ~ x.
    for (int t = 1; t < 3; t++) {
      for (int c = 0; c < h; c++) {
        assertEquals(x[t * h + c], u.hiddenStates()[t * h + c], "token " + t + " col " + c);
      }
    }
    float[] got = new float[h];
    float[] want = new float[h];
    for (int c = 0; c < h; c++) {
      got[c] = Bf16.decode(u.hiddenStates()[c]);
      want[c] = Bf16.decode(x[c]);
    }
    Tolerance.BF16.assertClose(got, want, "token 0 round trip");
  }

  @Test
  void permuteThenUnpermuteRestoresSingleExpertTokensExactly() {
    Random rnd = new Random(21);
    int s = 1223;
    int k = 5;
    int e = 16;
    int h = 33;
    // one expert per token at a random slot, some tokens nowhere
    int[] route = new int[s * k];
    java.util.Arrays.fill(route, -1);
    for (int t = 0; t < s; t++) {
      if (t % 11 != 0) {
        route[t * k + rnd.nextInt(k)] = rnd.nextInt(e - 3); // experts 13..15 get nothing
      }
    }
    float[] probs = new float[s * k];
    for (int i = 0; i < probs.length; i++) {
      probs[i] = rnd.nextFloat();
    }
    short[] x = MoePermuteTest.randomBf16(rnd, s * h);
    x[0] = (short) 0x8000;
    x[1] = (short) 0x0003;
    MoePermute.Result<short[]> p = MoePermute.permute(x, s, h, route, probs, k, e, MoePermuteTest.histogram(route, e),
        16, true);
    MoeUnpermute.Result<short[]> u = MoeUnpermute.unpermute(p.hiddenStatesUnzipped(), p.rows(), h,
        p.zippedExpertwiseRowmap(), route, p.tokenProbUnzipped(), s, k, e);
    for (int t = 0; t < s; t++) {
      for (int c = 0; c < h; c++) {
        short want = t % 11 == 0 ? 0 : x[t * h + c];
        if (want != u.hiddenStates()[t * h + c]) {
          throw new AssertionError("token " + t + " col " + c + ": expected " + want + ", got " + u.hiddenStates()[t * h + c]);
        }
      }
      for (int j = 0; j < k; j++) {
        float want = route[t * k + j] < 0 ? 0f : probs[t * k + j];
        assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(u.expertProbTopk()[t * k + j]));
      }
    }
  }

  @Test
  void multiExpertUnweightedSumMatchesNaiveReference() {
    Random rnd = new Random(8);
    int s = 211;
    int k = 8;
    int e = 64;
    int h = 17;
    int[] route = MoePermuteTest.randomRoute(rnd, s, k, e, 0.1);
    float[] probs = new float[s * k];
    short[] x = MoePermuteTest.randomBf16(rnd, s * h);
    MoePermute.Result<short[]> p = MoePermute.permute(x, s, h, route, probs, k, e, MoePermuteTest.histogram(route, e),
        2, true);
    // Give every permuted row its own values so that the sum is not just n*x.
    short[] xu = MoePermuteTest.randomBf16(rnd, p.hiddenStatesUnzipped().length);
    MoeUnpermute.Result<short[]> u = MoeUnpermute.unpermute(xu, p.rows(), h, p.zippedExpertwiseRowmap(), route,
        p.tokenProbUnzipped(), s, k, e);
    for (int t = 0; t < s; t++) {
      for (int c = 0; c < h; c++) {
        float sum = 0f;
        int cnt = 0;
        short raw = 0;
        for (int ex = 0; ex < e; ex++) {
          boolean routed = false;
          for (int j = 0; j < k; j++) {
            routed |= route[t * k + j] == ex;
          }
          if (routed) {
            int r = p.zippedExpertwiseRowmap()[t * e + ex];
            raw = xu[r * h + c];
            sum += Float.intBitsToFloat((raw & 0xFFFF) << 16);
            cnt++;
          }
        }
        short want = cnt == 0 ? 0 : cnt == 1 ? raw : Bf16.encode(sum);
        assertEquals(want, u.hiddenStates()[t * h + c], "token " + t + " col " + c);
      }
    }
  }

  @Test
  void rejectsInconsistentInputs() {
    int[] route = {0, -1};
    int[] rowmap = {0, -1};
    short[] xu = new short[2];
    assertMessage(() -> MoeUnpermute.unpermute(xu, 1, 2, rowmap, route, new float[2], 1, 2, 2), "tokenProbUnzipped must have 1");
    assertMessage(() -> MoeUnpermute.unpermute(xu, 1, 2, new int[] {1, -1}, route, new float[1], 1, 2, 2),
        "zippedExpertwiseRowmap[0, 0] = 1 is outside");
    assertMessage(() -> MoeUnpermute.unpermute(xu, 1, 2, new int[] {0, 0}, route, new float[1], 1, 2, 2),
        "does not route the token to expert 1");
    assertMessage(() -> MoeUnpermute.unpermute(xu, 1, 2, new int[] {-1, -1}, route, new float[1], 1, 2, 2),
        "routes the token to expert 0");
    assertMessage(() -> MoeUnpermute.unpermute(xu, 1, 2, rowmap, new int[] {0, 0}, new float[1], 1, 2, 2), "twice");
    assertMessage(() -> MoeUnpermute.unpermute(new short[3], 1, 2, rowmap, route, new float[1], 1, 2, 2),
        "hiddenStatesUnzipped must have 2");
  }
}
