package org.moespark.model;

/**
 * The safetensors dtype strings (models-and-formats.md §1.3; Rust {@code enum Dtype} of
 * safetensors 0.8). The declaration order is the reference crate's ("increasing alignment order"),
 * which its writer uses to sort tensors by descending dtype; {@link SafeTensorsWriter} relies on it.
 *
 * <p>Sub-byte types ({@link #F4}: E2M1, two per byte, low nibble first; {@link #F6_E2M3},
 * {@link #F6_E3M2}) record the logical element count in the header; a tensor's element count
 * times {@link #bits()} must be a multiple of 8. {@link #F8_E4M3} is the FN variant
 * ({@code torch.float8_e4m3fn}).
 */
public enum DType {
  BOOL(8),
  F4(4),
  F6_E2M3(6),
  F6_E3M2(6),
  U8(8),
  I8(8),
  F8_E5M2(8),
  F8_E4M3(8),
  F8_E8M0(8),
  F8_E4M3FNUZ(8),
  F8_E5M2FNUZ(8),
  I16(16),
  U16(16),
  F16(16),
  BF16(16),
  I32(32),
  U32(32),
  F32(32),
  C64(64),
  F64(64),
  I64(64),
  U64(64);

  private final int bits;

  DType(int bits) {
    this.bits = bits;
  }

  /** Bits per element. */
  public int bits() {
    return bits;
  }

  /** Whether one element occupies less than a byte. */
  public boolean isSubByte() {
    return bits < 8;
  }

  /** The header string, e.g. {@code "BF16"}. */
  public String headerName() {
    return name();
  }

  /** The dtype for a header string (case-sensitive, as in the reference reader), or null if unknown. */
  public static DType fromHeader(String s) {
    if (s == null) {
      return null;
    }
    for (DType d : values()) {
      if (d.name().equals(s)) {
        return d;
      }
    }
    return null;
  }

  /**
   * Exact byte length of {@code numel} elements; throws {@link ArithmeticException} on overflow and
   * {@link IllegalArgumentException} when a sub-byte tensor does not fill whole bytes.
   */
  public long byteLength(long numel) {
    if (numel < 0) {
      throw new IllegalArgumentException("element count must be >= 0, got " + numel);
    }
    long totalBits = Math.multiplyExact(numel, (long) bits);
    if (totalBits % 8 != 0) {
      throw new IllegalArgumentException(
          numel + " elements of " + name() + " (" + bits + " bits) do not fill whole bytes");
    }
    return totalBits / 8;
  }
}
