package org.moespark.formats;

import java.nio.ByteBuffer;

/** The bulk loops of the one-byte codecs (FP8, E8M0), shared so that each class stays declarative. */
final class ByteCodecs {
  private ByteCodecs() {}

  interface Encoder {
    byte encode(float x);
  }

  interface Decoder {
    float decode(byte code);
  }

  static void encode(Encoder e, float[] src, int srcOffset, byte[] dst, int dstOffset, int n, String what) {
    Checks.range(src.length, srcOffset, n, what + " src");
    Checks.range(dst.length, dstOffset, n, what + " dst");
    for (int i = 0; i < n; i++) {
      dst[dstOffset + i] = e.encode(src[srcOffset + i]);
    }
  }

  static void decode(Decoder d, byte[] src, int srcOffset, float[] dst, int dstOffset, int n, String what) {
    Checks.range(src.length, srcOffset, n, what + " src");
    Checks.range(dst.length, dstOffset, n, what + " dst");
    for (int i = 0; i < n; i++) {
      dst[dstOffset + i] = d.decode(src[srcOffset + i]);
    }
  }

  static void encode(Encoder e, ByteBuffer src, ByteBuffer dst, int n, String what) {
    Checks.count(n, what);
    ByteBuffer s = Checks.le(src, 4L * n, what + " src");
    ByteBuffer d = Checks.le(dst, n, what + " dst");
    Checks.writable(d, what + " dst");
    for (int i = 0; i < n; i++) {
      d.put(i, e.encode(s.getFloat(4 * i)));
    }
  }

  static void decode(Decoder dec, ByteBuffer src, ByteBuffer dst, int n, String what) {
    Checks.count(n, what);
    ByteBuffer s = Checks.le(src, n, what + " src");
    ByteBuffer d = Checks.le(dst, 4L * n, what + " dst");
    Checks.writable(d, what + " dst");
    for (int i = 0; i < n; i++) {
      d.putFloat(4 * i, dec.decode(s.get(i)));
    }
  }

  static void decode(Decoder dec, ByteBuffer src, float[] dst, int dstOffset, int n, String what) {
    Checks.range(dst.length, dstOffset, n, what + " dst");
    ByteBuffer s = Checks.le(src, n, what + " src");
    for (int i = 0; i < n; i++) {
      dst[dstOffset + i] = dec.decode(s.get(i));
    }
  }
}
