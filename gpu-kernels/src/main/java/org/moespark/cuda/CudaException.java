package org.moespark.cuda;

/** A CUDA runtime error raised by native code; {@link #code()} is the {@code cudaError_t} value. */
public final class CudaException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final int code;

  public CudaException(int code, String message) {
    super(message);
    this.code = code;
  }

  /** The {@code cudaError_t} value. */
  public int code() {
    return code;
  }
}
