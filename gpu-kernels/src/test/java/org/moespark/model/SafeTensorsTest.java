package org.moespark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {
  @TempDir
  Path dir;

  private static byte[] bytes(int... v) {
    byte[] b = new byte[v.length];
    for (int i = 0; i < v.length; i++) {
      b[i] = (byte) v[i];
    }
    return b;
  }

  private static byte[] le32(float... v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float f : v) {
      b.putFloat(f);
    }
    return b.array();
  }

  private static byte[] bufferBytes(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.duplicate().get(out);
    return out;
  }

  /** A file with the given 8-byte length field, header text and data bytes. */
  private Path raw(String name, long headerLen, byte[] header, byte[] data) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(headerLen).put(header).put(data);
    Path p = dir.resolve(name);
    Files.write(p, b.array());
    return p;
  }

  private Path raw(String name, String header, byte[] data) throws IOException {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    return raw(name, h.length, h, data);
  }

  // ---------------------------------------------------------------------------------------------
  // writer: byte-exact against the reference crate's own tests (safetensors tensor.rs)

  @Test
  void writerMatchesTheReferenceSerialization() {
    byte[] got = new SafeTensorsWriter().add("attn.0", DType.F32, new long[] {1, 2, 3}, le32(0, 1, 2, 3, 4, 5)).toBytes();
    byte[] expected = bytes(64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121,
        112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34,
        100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0,
        0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64);
    assertArrayEquals(expected, got);
  }

  @Test
  void writerPadsTheHeaderToEightBytesWithSpaces() {
    byte[] got = new SafeTensorsWriter().add("attn0", DType.F32, new long[] {1, 1, 2, 3}, le32(0, 1, 2, 3, 4, 5)).toBytes();
    byte[] expected = bytes(72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112,
        101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44,
        34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32,
        32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64);
    assertArrayEquals(expected, got);
    assertArrayEquals(bytes(8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32), new SafeTensorsWriter().toBytes(),
        "empty file");
    byte[] withMeta = new SafeTensorsWriter().metadata("framework", "pt").toBytes();
    assertArrayEquals(bytes(40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34,
        58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32),
        withMeta, "metadata only");
  }

  @Test
  void writerOrdersByDescendingDtypeThenName() throws IOException {
    SafeTensorsWriter w = new SafeTensorsWriter()
        .add("b", DType.U8, new long[] {1}, new byte[1])
        .add("a", DType.U8, new long[] {3}, new byte[3])
        .add("z", DType.F32, new long[] {1}, new byte[4])
        .add("y", DType.BF16, new long[] {1}, new byte[2])
        .add("x", DType.F16, new long[] {1}, new byte[2])
        .add("w", DType.I64, new long[] {1}, new byte[8]);
    Path p = dir.resolve("order.safetensors");
    w.write(p);
    try (SafeTensors st = SafeTensors.open(p)) {
      // Rust enum order: ... U8 < F16 < BF16 < F32 < I64 ; descending dtype, then name
      assertEquals(List.of("w", "z", "y", "x", "a", "b"), st.names());
      assertEquals(0, st.headerLength() % 8);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // round trips

  @Test
  void roundTripsEveryDtype() throws IOException {
    Random rnd = new Random(7);
    SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
    List<byte[]> payloads = new ArrayList<>();
    List<long[]> shapes = new ArrayList<>();
    for (DType d : DType.values()) {
      long[] shape = d.bits() == 6 ? new long[] {4} : d.bits() == 4 ? new long[] {2, 4} : new long[] {3, 2};
      long numel = 1;
      for (long x : shape) {
        numel *= x;
      }
      byte[] data = new byte[(int) d.byteLength(numel)];
      rnd.nextBytes(data);
      payloads.add(data);
      shapes.add(shape);
      w.add("t_" + d.name(), d, shape, data);
    }
    Path p = dir.resolve("all.safetensors");
    w.write(p);
    try (SafeTensors st = SafeTensors.open(p)) {
      assertEquals(Map.of("format", "pt"), st.metadata());
      assertEquals(DType.values().length, st.size());
      for (DType d : DType.values()) {
        Tensor t = st.tensor("t_" + d.name());
        assertEquals(d, t.dtype());
        assertArrayEquals(shapes.get(d.ordinal()), t.shape(), d.name());
        assertArrayEquals(payloads.get(d.ordinal()), bufferBytes(t.data()), d.name());
        assertTrue(t.data().isReadOnly());
        assertEquals(ByteOrder.LITTLE_ENDIAN, t.data().order());
      }
      assertEquals(3, st.tensor("t_F6_E2M3").byteSize(), "[4] x 6 bits = 3 bytes");
      assertEquals(4, st.tensor("t_F4").byteSize(), "[2, 4] x 4 bits = 4 bytes");
      assertEquals(48, st.tensor("t_C64").byteSize(), "[3, 2] x 8 bytes");
    }
  }

  @Test
  void decodesFloatsWithHandComputedVectors() throws IOException {
    SafeTensorsWriter w = new SafeTensorsWriter()
        .add("f32", DType.F32, new long[] {2}, le32(1.5f, -0.25f))
        // F16: 1.0, -2.0, 65504 (max), 2^-24 (min subnormal), +inf, -0
        .add("f16", DType.F16, new long[] {6}, bytes(0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00, 0x00, 0x7C, 0x00, 0x80))
        // BF16: 1.0, -123.5, 2^-133 (subnormal 0x0001)
        .add("bf16", DType.BF16, new long[] {3}, bytes(0x80, 0x3F, 0xF7, 0xC2, 0x01, 0x00))
        .add("f64", DType.F64, new long[] {1}, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putDouble(0.1).array())
        .add("i32", DType.I32, new long[] {1}, new byte[4])
        .add("scalar", DType.F32, new long[] {}, le32(3f))
        .add("empty", DType.F32, new long[] {0, 5}, new byte[0]);
    Path p = dir.resolve("f.safetensors");
    w.write(p);
    try (SafeTensors st = SafeTensors.open(p)) {
      assertArrayEquals(new float[] {1.5f, -0.25f}, st.tensor("f32").toFloatArray());
      float[] h = st.tensor("f16").toFloatArray();
      assertArrayEquals(new float[] {1f, -2f, 65504f, 0x1p-24f, Float.POSITIVE_INFINITY, -0f}, h);
      assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(h[5]));
      assertArrayEquals(new float[] {1f, -123.5f, 0x1p-133f}, st.tensor("bf16").toFloatArray());
      assertArrayEquals(new float[] {0.1f}, st.tensor("f64").toFloatArray());
      assertArrayEquals(new float[] {3f}, st.tensor("scalar").toFloatArray());
      assertEquals(1, st.tensor("scalar").numel());
      assertArrayEquals(new float[0], st.tensor("empty").toFloatArray());
      SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> st.tensor("i32").toFloatArray());
      assertTrue(e.getMessage().contains("'i32'") && e.getMessage().contains("I32"), e.getMessage());
    }
  }

  @Test
  void halfEncodersRoundToNearestEven() throws IOException {
    // BF16 vectors of models-and-formats.md §3.1 and F16 ties worked by hand
    float[] bfIn = {Float.intBitsToFloat(0x3F808000), Float.intBitsToFloat(0x3F818000), Float.intBitsToFloat(0x3F808001),
        Float.intBitsToFloat(0x3F80FFFF), Float.intBitsToFloat(0x7F7FFFFF), Float.intBitsToFloat(0xFF800000)};
    short[] bfOut = {0x3F80, 0x3F82, 0x3F81, 0x3F81, 0x7F80, (short) 0xFF80};
    float[] hIn = {1f, 1f + 0x1p-10f, 1f + 0x1p-11f, 1f + 3 * 0x1p-11f, 65504f, 65519f, 65520f, 0x1p-24f, 0x1p-25f,
        3 * 0x1p-26f, -0x1p-14f};
    short[] hOut = {0x3C00, 0x3C01, 0x3C00, 0x3C02, 0x7BFF, 0x7BFF, 0x7C00, 0x0001, 0x0000, 0x0001, (short) 0x8400};
    Path p = dir.resolve("enc.safetensors");
    new SafeTensorsWriter().addFloats("bf", DType.BF16, new long[] {bfIn.length}, bfIn)
        .addFloats("h", DType.F16, new long[] {hIn.length}, hIn).write(p);
    try (SafeTensors st = SafeTensors.open(p)) {
      ByteBuffer b = st.tensor("bf").data();
      for (int i = 0; i < bfOut.length; i++) {
        assertEquals(bfOut[i], b.getShort(2 * i), "bf16 of " + Integer.toHexString(Float.floatToRawIntBits(bfIn[i])));
      }
      ByteBuffer hb = st.tensor("h").data();
      for (int i = 0; i < hOut.length; i++) {
        assertEquals(hOut[i], hb.getShort(2 * i), "f16 of " + hIn[i]);
      }
    }
  }

  @Test
  void mapsAcrossSmallWindowsIncludingTensorsLargerThanAWindow() throws IOException {
    Random rnd = new Random(11);
    SafeTensorsWriter w = new SafeTensorsWriter();
    List<byte[]> data = new ArrayList<>();
    int[] sizes = {5, 16, 17, 40, 3, 64, 1, 33};
    for (int i = 0; i < sizes.length; i++) {
      byte[] d = new byte[sizes[i]];
      rnd.nextBytes(d);
      data.add(d);
      w.add(String.format("t%02d", i), DType.U8, new long[] {sizes[i]}, d);
    }
    Path p = dir.resolve("win.safetensors");
    w.write(p);
    try (SafeTensors st = SafeTensors.open(p, 16)) {
      for (int i = 0; i < sizes.length; i++) {
        Tensor t = st.tensor(String.format("t%02d", i));
        assertArrayEquals(data.get(i), bufferBytes(t.data()), t.name());
        if (sizes[i] > 3) {
          byte[] part = bufferBytes(t.data(2, sizes[i] - 3));
          byte[] want = java.util.Arrays.copyOfRange(data.get(i), 2, sizes[i] - 1);
          assertArrayEquals(want, part, t.name() + " partial");
        }
      }
      Tensor t = st.tensor("t00");
      assertThrows(IndexOutOfBoundsException.class, () -> t.data(3, 3));
      assertThrows(IndexOutOfBoundsException.class, () -> t.data(-1, 1));
    }
  }

  @Test
  void closedFileRefusesLookupsButKeepsHandedOutBuffers() throws IOException {
    Path p = dir.resolve("c.safetensors");
    new SafeTensorsWriter().add("a", DType.F32, new long[] {1}, le32(2f)).write(p);
    SafeTensors st = SafeTensors.open(p);
    ByteBuffer b = st.tensor("a").data();
    st.close();
    st.close();
    assertEquals(2f, b.getFloat(0));
    assertThrows(IllegalStateException.class, () -> st.tensor("a"));
  }

  @Test
  void acceptsWhitespaceAroundTheHeaderAndEmptyTensors() throws IOException {
    Path p = raw("ws.safetensors", " \n{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
        + "\"b\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}   \t", bytes(9));
    try (SafeTensors st = SafeTensors.open(p)) {
      assertEquals(0, st.tensor("a").byteSize());
      assertEquals(9, st.tensor("b").data().get(0));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // validation: each malformed file gives a clear SafeTensorsException naming the file (and tensor)

  private SafeTensorsException rejects(Path p, String... fragments) {
    SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensors.open(p).close());
    assertTrue(e.getMessage().contains(p.toString()), "names the file: " + e.getMessage());
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
    }
    return e;
  }

  private static final String T = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

  @Test
  void rejectsTruncatedFiles() throws IOException {
    Path p = dir.resolve("tiny.safetensors");
    Files.write(p, bytes(1, 0, 0));
    rejects(p, "too small");
    byte[] good = new SafeTensorsWriter().add("t", DType.F32, new long[] {2}, le32(1, 2)).toBytes();
    Path cut = dir.resolve("cut.safetensors");
    Files.write(cut, java.util.Arrays.copyOf(good, good.length - 3));
    rejects(cut, "'t'", "past the end of the data section");
    Path cutHeader = dir.resolve("cuth.safetensors");
    Files.write(cutHeader, java.util.Arrays.copyOf(good, 20));
    rejects(cutHeader, "runs past the end of the file");
  }

  @Test
  void rejectsHugeOrNegativeHeaderLengths() throws IOException {
    byte[] h = T.getBytes(StandardCharsets.UTF_8);
    rejects(raw("big.safetensors", 1L << 40, h, new byte[8]), "1099511627776", "exceeds the limit");
    rejects(raw("neg.safetensors", -1L, h, new byte[8]), "18446744073709551615", "exceeds the limit");
    rejects(raw("cap.safetensors", SafeTensors.MAX_HEADER_BYTES + 1, h, new byte[8]), "exceeds the limit");
    rejects(raw("past.safetensors", h.length + 9, h, new byte[8]), "runs past the end of the file");
  }

  @Test
  void rejectsInvalidHeaders() throws IOException {
    rejects(raw("json.safetensors", "{\"t\":{\"dtype\":\"F32\",", new byte[0]), "not valid JSON", "at byte");
    rejects(raw("arr.safetensors", "[1,2]", new byte[0]), "must be a JSON object");
    rejects(raw("empty.safetensors", "", new byte[0]), "not valid JSON");
    byte[] badUtf8 = bytes('{', '"', 0xFF, '"', ':', '1', '}');
    rejects(raw("utf.safetensors", badUtf8.length, badUtf8, new byte[0]), "UTF-8");
    rejects(raw("garbage.safetensors", T + "xyz", new byte[8]), "trailing content");
    rejects(raw("dup.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
        + "\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", new byte[2]), "duplicate key \"t\"");
    rejects(raw("meta.safetensors", "{\"__metadata__\":{\"a\":1}}", new byte[0]), "__metadata__", "'a'", "string");
    rejects(raw("meta2.safetensors", "{\"__metadata__\":[]}", new byte[0]), "__metadata__");
    rejects(raw("entry.safetensors", "{\"t\":5}", new byte[0]), "'t'", "entry must be an object");
  }

  @Test
  void rejectsInconsistentTensorEntries() throws IOException {
    rejects(raw("dtype.safetensors", "{\"t\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]),
        "'t'", "unknown dtype \"F12\"");
    rejects(raw("lower.safetensors", "{\"t\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]),
        "unknown dtype");
    rejects(raw("mismatch.safetensors", "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]),
        "'t'", "hold 8 bytes", "needs 12");
    rejects(raw("range.safetensors", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]),
        "'t'", "past the end of the data section (8 bytes)");
    rejects(raw("order.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}", new byte[8]),
        "'t'", "begin > end");
    rejects(raw("negshape.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", new byte[0]),
        "'t'", "non-negative");
    rejects(raw("fshape.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}", new byte[1]),
        "'t'", "shape");
    rejects(raw("overflow.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],"
        + "\"data_offsets\":[0,0]}}", new byte[0]), "'t'", "overflows");
    rejects(raw("overflow2.safetensors", "{\"t\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
        + "\"data_offsets\":[0,0]}}", new byte[0]), "'t'", "overflows");
    rejects(raw("bigoff.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}",
        new byte[1]), "'t'", "data_offsets");
    rejects(raw("nooff.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1]}}", new byte[1]), "'t'",
        "missing field 'data_offsets'");
    rejects(raw("offs3.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", new byte[1]),
        "'t'", "[begin, end]");
    rejects(raw("f4odd.safetensors", "{\"t\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", new byte[2]),
        "'t'", "do not fill whole bytes");
  }

  @Test
  void rejectsOverlapsHolesAndTrailingBytes() throws IOException {
    rejects(raw("overlap.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
        + "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", new byte[6]), "'b'", "overlap tensor 'a'");
    rejects(raw("same.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
        + "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", new byte[4]), "overlap");
    rejects(raw("hole.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
        + "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}", new byte[6]), "'b'", "bytes [2, 4)");
    rejects(raw("start.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", new byte[3]),
        "'a'", "bytes [0, 1)");
    rejects(raw("trail.safetensors", T, new byte[9]), "1 trailing bytes after the last tensor");
    rejects(raw("trail2.safetensors", "{}", new byte[3]), "3 trailing bytes");
  }

  @Test
  void reportsMissingTensorsWithTheFile() throws IOException {
    Path p = raw("m.safetensors", T, new byte[8]);
    try (SafeTensors st = SafeTensors.open(p)) {
      SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> st.tensor("nope"));
      assertTrue(e.getMessage().contains("'nope'") && e.getMessage().contains(p.toString()), e.getMessage());
    }
  }

  @Test
  void writerRejectsBadArguments() {
    SafeTensorsWriter w = new SafeTensorsWriter().add("a", DType.U8, new long[] {1}, new byte[1]);
    assertThrows(IllegalArgumentException.class, () -> w.add("a", DType.U8, new long[] {1}, new byte[1]));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> w.add("b", DType.F32, new long[] {2}, new byte[4]));
    assertTrue(e.getMessage().contains("'b'") && e.getMessage().contains("needs 8 bytes, got 4"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> w.add("__metadata__", DType.U8, new long[] {1}, new byte[1]));
    assertThrows(IllegalArgumentException.class, () -> w.add("c", DType.U8, new long[] {-1}, new byte[0]));
    assertThrows(IllegalArgumentException.class, () -> w.addFloats("d", DType.I32, new long[] {1}, new float[1]));
  }
}
