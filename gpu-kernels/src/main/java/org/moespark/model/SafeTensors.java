package org.moespark.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A read-only, memory-mapped safetensors file (models-and-formats.md §1).
 *
 * <p>Layout: {@code u64 LE N} + {@code N} bytes of UTF-8 JSON header + the data section; every
 * tensor's {@code data_offsets [begin, end)} are relative to the first data byte. {@link #open}
 * validates everything before any tensor is handed out, with the reference reader's rules:
 * the header length is at most {@link #MAX_HEADER_BYTES} and inside the file; the header is a
 * strict UTF-8 JSON object (surrounding JSON whitespace and the writer's trailing-space padding
 * are allowed); {@code __metadata__} is a string → string map; every tensor has a known dtype, a
 * shape of non-negative integers whose element count does not overflow, {@code begin <= end}
 * inside the data section, and {@code end - begin == numel * bits / 8}; sorted by offset the
 * tensors cover the data section exactly — no overlaps, no holes and no trailing bytes after the
 * last tensor. Any violation is a {@link SafeTensorsException} naming the file and tensor; nothing
 * is allocated in proportion to a length read from the file before that length has been checked
 * against the file size.
 *
 * <p>Data is mapped lazily in overlapping windows (1 GiB stride, 2 GiB - 1 long) so files and
 * tensors beyond 2 GiB work: a tensor up to 1 GiB is a slice of one window; a larger one gets its
 * own mapping, and one over 2 GiB - 1 bytes is read in parts with {@link Tensor#data(long, int)}.
 * Offsets are {@code long} throughout. Buffers handed out stay valid after {@link #close()} (the
 * JDK unmaps them when they are garbage-collected); {@code close()} releases the file channel and
 * makes further look-ups fail.
 *
 * <p>Thread-safe: look-ups and mapping are synchronized on this object; handed-out buffers are
 * independent read-only views.
 */
public final class SafeTensors implements AutoCloseable {
  /** Header size limit of the reference reader ({@code MAX_HEADER_SIZE}). */
  public static final long MAX_HEADER_BYTES = 100_000_000L;
  /** Window stride of the data mapping; a mapping is at most 2 × stride − 1 bytes. */
  static final long DEFAULT_WINDOW = 1L << 30;

  private final Path path;
  private final FileChannel channel;
  private final long headerLength;
  private final long dataStart;
  private final long dataLength;
  private final Map<String, String> metadata;
  private final Map<String, Tensor> tensors; // in offset order
  private final long window;
  private final Map<Long, MappedByteBuffer> windows = new LinkedHashMap<>();
  private boolean closed;

  private SafeTensors(Path path, FileChannel channel, long headerLength, long dataLength,
      Map<String, String> metadata, List<Entry> entries, long window) {
    this.path = path;
    this.channel = channel;
    this.headerLength = headerLength;
    this.dataStart = 8 + headerLength;
    this.dataLength = dataLength;
    this.metadata = metadata;
    this.window = window;
    LinkedHashMap<String, Tensor> m = new LinkedHashMap<>();
    for (Entry e : entries) {
      m.put(e.name, new Tensor(this, e.name, e.dtype, e.shape, e.begin, e.end - e.begin));
    }
    this.tensors = Collections.unmodifiableMap(m);
  }

  /** Opens and validates a safetensors file. I/O failures are {@link IOException}s, format errors {@link SafeTensorsException}s. */
  public static SafeTensors open(Path file) throws IOException {
    return open(file, DEFAULT_WINDOW);
  }

  /** As {@link #open(Path)} with a given window stride (tests use small windows to exercise window crossing). */
  static SafeTensors open(Path file, long window) throws IOException {
    if (file == null) {
      throw new IllegalArgumentException("file must not be null");
    }
    if (window < 1 || window > DEFAULT_WINDOW) {
      throw new IllegalArgumentException("window must be in [1, 2^30], got " + window);
    }
    FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
    try {
      SafeTensors st = parse(file, ch, window);
      ch = null;
      return st;
    } finally {
      if (ch != null) {
        ch.close();
      }
    }
  }

  private static final class Entry {
    final String name;
    final DType dtype;
    final long[] shape;
    final long begin;
    final long end;

    Entry(String name, DType dtype, long[] shape, long begin, long end) {
      this.name = name;
      this.dtype = dtype;
      this.shape = shape;
      this.begin = begin;
      this.end = end;
    }
  }

  private static SafeTensorsException bad(Path file, String msg) {
    return new SafeTensorsException("safetensors file " + file + ": " + msg);
  }

  private static SafeTensorsException bad(Path file, String tensor, String msg) {
    return new SafeTensorsException("safetensors file " + file + ", tensor '" + tensor + "': " + msg);
  }

  private static void readFully(FileChannel ch, ByteBuffer dst, long pos) throws IOException {
    while (dst.hasRemaining()) {
      int n = ch.read(dst, pos);
      if (n < 0) {
        throw new IOException("unexpected end of file at byte " + pos);
      }
      pos += n;
    }
  }

  private static SafeTensors parse(Path file, FileChannel ch, long window) throws IOException {
    long size = ch.size();
    if (size < 8) {
      throw bad(file, "file is " + size + " bytes, too small for the 8-byte header length");
    }
    ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    readFully(ch, lenBuf, 0);
    long n = lenBuf.getLong(0);
    if (n < 0 || n > MAX_HEADER_BYTES) {
      throw bad(file, "header length " + Long.toUnsignedString(n) + " exceeds the limit of "
          + MAX_HEADER_BYTES + " bytes");
    }
    if (n > size - 8) {
      throw bad(file, "header length " + n + " runs past the end of the file (" + size + " bytes, "
          + (size - 8) + " after the length field)");
    }
    byte[] header = new byte[(int) n];
    readFully(ch, ByteBuffer.wrap(header), 8);
    Object root;
    try {
      root = Json.parse(header, 0, header.length, Json.DEFAULT_MAX_DEPTH);
    } catch (JsonException e) {
      throw new SafeTensorsException("safetensors file " + file + ": header is not valid JSON: "
          + e.getMessage() + " of the header", e);
    }
    if (!(root instanceof Map)) {
      throw bad(file, "header must be a JSON object, got " + Json.typeName(root));
    }
    long dataLength = size - 8 - n;
    Map<String, String> metadata = Collections.emptyMap();
    List<Entry> entries = new ArrayList<>();
    for (Map.Entry<?, ?> kv : ((Map<?, ?>) root).entrySet()) {
      String name = (String) kv.getKey();
      Object v = kv.getValue();
      if (name.equals("__metadata__")) {
        metadata = parseMetadata(file, v);
        continue;
      }
      entries.add(parseEntry(file, name, v, dataLength));
    }
    entries.sort(Comparator.<Entry>comparingLong(e -> e.begin).thenComparingLong(e -> e.end));
    long expected = 0;
    String previous = null;
    for (Entry e : entries) {
      if (e.begin < expected) {
        throw bad(file, e.name, "data_offsets [" + e.begin + ", " + e.end + ") overlap tensor '"
            + previous + "' (which ends at " + expected + ")");
      }
      if (e.begin > expected) {
        throw bad(file, e.name, "data_offsets [" + e.begin + ", " + e.end + ") leave bytes ["
            + expected + ", " + e.begin + ") of the data section covered by no tensor");
      }
      expected = e.end;
      previous = e.name;
    }
    if (expected != dataLength) {
      throw bad(file, (dataLength - expected) + " trailing bytes after the last tensor (data section is "
          + dataLength + " bytes, tensors cover " + expected + ")");
    }
    return new SafeTensors(file, ch, n, dataLength, metadata, entries, window);
  }

  private static Map<String, String> parseMetadata(Path file, Object v) {
    if (!(v instanceof Map)) {
      throw bad(file, "__metadata__ must be an object of strings, got " + Json.typeName(v));
    }
    LinkedHashMap<String, String> m = new LinkedHashMap<>();
    for (Map.Entry<?, ?> kv : ((Map<?, ?>) v).entrySet()) {
      if (!(kv.getValue() instanceof String)) {
        throw bad(file, "__metadata__ value of key '" + kv.getKey() + "' must be a string, got "
            + Json.typeName(kv.getValue()));
      }
      m.put((String) kv.getKey(), (String) kv.getValue());
    }
    return Collections.unmodifiableMap(m);
  }

  private static long nonNegativeInt(Path file, String name, String field, Object v) {
    if (!(v instanceof Long)) {
      throw bad(file, name, field + " must hold non-negative integers below 2^63, got "
          + (v instanceof Number ? v.toString() : Json.typeName(v)));
    }
    long x = (Long) v;
    if (x < 0) {
      throw bad(file, name, field + " must hold non-negative integers, got " + x);
    }
    return x;
  }

  private static Entry parseEntry(Path file, String name, Object v, long dataLength) {
    if (!(v instanceof Map)) {
      throw bad(file, name, "entry must be an object with dtype, shape and data_offsets, got "
          + Json.typeName(v));
    }
    Map<?, ?> m = (Map<?, ?>) v;
    for (String field : new String[] {"dtype", "shape", "data_offsets"}) {
      if (!m.containsKey(field)) {
        throw bad(file, name, "missing field '" + field + "'");
      }
    }
    Object dt = m.get("dtype");
    if (!(dt instanceof String)) {
      throw bad(file, name, "dtype must be a string, got " + Json.typeName(dt));
    }
    DType dtype = DType.fromHeader((String) dt);
    if (dtype == null) {
      throw bad(file, name, "unknown dtype \"" + dt + "\"");
    }
    Object sh = m.get("shape");
    if (!(sh instanceof List)) {
      throw bad(file, name, "shape must be an array, got " + Json.typeName(sh));
    }
    List<?> shapeList = (List<?>) sh;
    long[] shape = new long[shapeList.size()];
    long numel = 1;
    for (int i = 0; i < shape.length; i++) {
      shape[i] = nonNegativeInt(file, name, "shape", shapeList.get(i));
      try {
        numel = Math.multiplyExact(numel, shape[i]);
      } catch (ArithmeticException e) {
        throw bad(file, name, "shape " + shapeList + " overflows a 64-bit element count");
      }
    }
    long bytes;
    try {
      bytes = dtype.byteLength(numel);
    } catch (ArithmeticException e) {
      throw bad(file, name, "shape " + shapeList + " of " + dtype + " overflows a 64-bit byte count");
    } catch (IllegalArgumentException e) {
      throw bad(file, name, "shape " + shapeList + ": " + e.getMessage());
    }
    Object off = m.get("data_offsets");
    if (!(off instanceof List) || ((List<?>) off).size() != 2) {
      throw bad(file, name, "data_offsets must be an array [begin, end], got "
          + (off instanceof List ? off.toString() : Json.typeName(off)));
    }
    long begin = nonNegativeInt(file, name, "data_offsets", ((List<?>) off).get(0));
    long end = nonNegativeInt(file, name, "data_offsets", ((List<?>) off).get(1));
    if (begin > end) {
      throw bad(file, name, "data_offsets [" + begin + ", " + end + ") have begin > end");
    }
    if (end > dataLength) {
      throw bad(file, name, "data_offsets [" + begin + ", " + end + ") run past the end of the data section ("
          + dataLength + " bytes)");
    }
    if (end - begin != bytes) {
      throw bad(file, name, "data_offsets [" + begin + ", " + end + ") hold " + (end - begin)
          + " bytes but shape " + shapeList + " of " + dtype + " needs " + bytes);
    }
    return new Entry(name, dtype, shape, begin, end);
  }

  /** The file this was opened from. */
  public Path path() {
    return path;
  }

  /** Header length N in bytes (the data section starts at byte 8 + N). */
  public long headerLength() {
    return headerLength;
  }

  /** Length of the data section in bytes. */
  public long dataLength() {
    return dataLength;
  }

  /** The {@code __metadata__} map (empty when absent). */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Tensor names in data-offset order. */
  public List<String> names() {
    return new ArrayList<>(tensors.keySet());
  }

  /** Number of tensors. */
  public int size() {
    return tensors.size();
  }

  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  /** The tensor called {@code name}; a {@link SafeTensorsException} naming the file when there is none. */
  public Tensor tensor(String name) {
    Tensor t = tensors.get(name);
    if (t == null) {
      throw bad(path, "no tensor named '" + name + "' (" + tensors.size() + " tensors in the file)");
    }
    checkOpen();
    return t;
  }

  /** All tensors in data-offset order. */
  public List<Tensor> tensors() {
    return new ArrayList<>(tensors.values());
  }

  private void checkOpen() {
    synchronized (this) {
      if (closed) {
        throw new IllegalStateException("safetensors file " + path + " is closed");
      }
    }
  }

  /**
   * A read-only little-endian view of {@code length} bytes at {@code offset} of the data section.
   * Callers (Tensor) have checked the range.
   */
  synchronized ByteBuffer slice(long offset, int length) {
    if (closed) {
      throw new IllegalStateException("safetensors file " + path + " is closed");
    }
    if (length == 0) {
      return ByteBuffer.allocateDirect(0).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }
    try {
      if (length > window) {
        MappedByteBuffer own = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + offset, length);
        return own.slice(0, length).order(ByteOrder.LITTLE_ENDIAN);
      }
      long k = offset / window;
      MappedByteBuffer w = windows.get(k);
      long wStart = k * window;
      if (w == null) {
        long len = Math.min(2 * window - 1, dataLength - wStart);
        w = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + wStart, len);
        windows.put(k, w);
      }
      return w.slice((int) (offset - wStart), length).order(ByteOrder.LITTLE_ENDIAN);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("mapping bytes [" + offset + ", " + (offset + length)
          + ") of the data section of " + path, e);
    }
  }

  /** Releases the file channel; buffers already handed out remain readable. Idempotent. */
  @Override
  public synchronized void close() throws IOException {
    if (!closed) {
      closed = true;
      windows.clear();
      channel.close();
    }
  }

  @Override
  public String toString() {
    return "SafeTensors[" + path + ", " + tensors.size() + " tensors, " + dataLength + " data bytes]";
  }
}
