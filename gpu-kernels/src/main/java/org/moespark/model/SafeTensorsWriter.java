package org.moespark.model;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes safetensors files the way the reference writer ({@code safetensors} {@code prepare()})
 * does (models-and-formats.md §1.2): tensors sorted by descending dtype (the {@link DType}
 * declaration order) and then by name (UTF-8 byte order), laid out back to back from offset 0;
 * header {@code {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...}}
 * in compact JSON, tensors in data order, padded with spaces to a multiple of 8 bytes so that the
 * data section starts 8-byte aligned. Metadata keys are written sorted (the reference keeps them
 * in a hash map, so its order is unspecified).
 *
 * <p>Tensor data is held by reference until {@link #write}/{@link #toBytes}; meant for tests and
 * for generating fixtures (the {@code gen} command).
 */
public final class SafeTensorsWriter {
  private static final class Pending {
    final String name;
    final DType dtype;
    final long[] shape;
    final ByteBuffer data;

    Pending(String name, DType dtype, long[] shape, ByteBuffer data) {
      this.name = name;
      this.dtype = dtype;
      this.shape = shape;
      this.data = data;
    }
  }

  private final Map<String, Pending> tensors = new LinkedHashMap<>();
  private final TreeMap<String, String> metadata = new TreeMap<>();

  /** Adds a {@code __metadata__} entry (e.g. {@code "format" -> "pt"}). */
  public SafeTensorsWriter metadata(String key, String value) {
    if (key == null || value == null) {
      throw new IllegalArgumentException("metadata key and value must not be null, got " + key + " = " + value);
    }
    metadata.put(key, value);
    return this;
  }

  /** Adds a tensor from raw little-endian bytes (copied). */
  public SafeTensorsWriter add(String name, DType dtype, long[] shape, byte[] data) {
    if (data == null) {
      throw new IllegalArgumentException("tensor '" + name + "': data must not be null");
    }
    return add(name, dtype, shape, ByteBuffer.wrap(data.clone()));
  }

  /** Adds a tensor from the remaining bytes of {@code data} (kept by reference; not consumed). */
  public SafeTensorsWriter add(String name, DType dtype, long[] shape, ByteBuffer data) {
    if (name == null || name.isEmpty()) {
      throw new IllegalArgumentException("tensor name must be non-empty, got '" + name + "'");
    }
    if (name.equals("__metadata__")) {
      throw new IllegalArgumentException("'__metadata__' is reserved and cannot name a tensor");
    }
    if (tensors.containsKey(name)) {
      throw new IllegalArgumentException("tensor '" + name + "' added twice");
    }
    if (dtype == null || shape == null || data == null) {
      throw new IllegalArgumentException("tensor '" + name + "': dtype, shape and data must not be null");
    }
    long numel = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("tensor '" + name + "': negative dimension in shape " + Arrays.toString(shape));
      }
      numel = Math.multiplyExact(numel, d);
    }
    long bytes = dtype.byteLength(numel);
    if (data.remaining() != bytes) {
      throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape) + " of " + dtype
          + " needs " + bytes + " bytes, got " + data.remaining());
    }
    tensors.put(name, new Pending(name, dtype, shape.clone(), data.duplicate()));
    return this;
  }

  /**
   * Adds a float tensor encoded as {@code dtype} ∈ {F32, F16, BF16, F64}; F16/BF16 round to
   * nearest even (torch's cast).
   */
  public SafeTensorsWriter addFloats(String name, DType dtype, long[] shape, float[] values) {
    if (values == null) {
      throw new IllegalArgumentException("tensor '" + name + "': values must not be null");
    }
    int size;
    switch (dtype) {
      case F32:
        size = 4;
        break;
      case F16:
      case BF16:
        size = 2;
        break;
      case F64:
        size = 8;
        break;
      default:
        throw new IllegalArgumentException("tensor '" + name + "': addFloats encodes F32, F16, BF16 or F64, got " + dtype);
    }
    ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(values.length, size)).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      switch (dtype) {
        case F32:
          b.putFloat(v);
          break;
        case F16:
          b.putShort(org.moespark.formats.Fp16.encode(v));
          break;
        case BF16:
          b.putShort(org.moespark.formats.Bf16.encode(v));
          break;
        default:
          b.putDouble(v);
      }
    }
    b.flip();
    return add(name, dtype, shape, b);
  }

  private List<Pending> ordered() {
    List<Pending> list = new ArrayList<>(tensors.values());
    list.sort((a, b) -> {
      int c = Integer.compare(b.dtype.ordinal(), a.dtype.ordinal());
      return c != 0 ? c : Arrays.compareUnsigned(utf8(a.name), utf8(b.name));
    });
    return list;
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  /** The header bytes (JSON + space padding) the file will carry. */
  public byte[] header() {
    Map<String, Object> root = new LinkedHashMap<>();
    if (!metadata.isEmpty()) {
      root.put("__metadata__", metadata);
    }
    long offset = 0;
    for (Pending p : ordered()) {
      Map<String, Object> info = new LinkedHashMap<>();
      info.put("dtype", p.dtype.headerName());
      info.put("shape", p.shape);
      long end = offset + p.data.remaining();
      info.put("data_offsets", new long[] {offset, end});
      root.put(p.name, info);
      offset = end;
    }
    byte[] json = utf8(Json.write(root));
    int padded = (json.length + 7) / 8 * 8;
    byte[] out = Arrays.copyOf(json, padded);
    Arrays.fill(out, json.length, padded, (byte) ' ');
    return out;
  }

  /** The whole file in memory (small files only). */
  public byte[] toBytes() {
    ByteArrayOutputStream bos = new ByteArrayOutputStream();
    try {
      writeTo(bos);
    } catch (IOException e) {
      throw new AssertionError(e); // ByteArrayOutputStream does not throw
    }
    return bos.toByteArray();
  }

  /** Writes the file (created or truncated). */
  public void write(Path file) throws IOException {
    try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
      writeTo(os);
    }
  }

  private void writeTo(OutputStream os) throws IOException {
    byte[] header = header();
    ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length);
    os.write(len.array());
    os.write(header);
    WritableByteChannel ch = Channels.newChannel(os);
    for (Pending p : ordered()) {
      ByteBuffer d = p.data.duplicate();
      while (d.hasRemaining()) {
        ch.write(d);
      }
    }
    os.flush();
  }
}
