package org.moespark.model;

/** A JSON text that {@link Json} rejects; {@link #offset()} is the byte offset of the problem in the input. */
public final class JsonException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  private final long offset;

  public JsonException(String message, long offset) {
    super(message + " at byte " + offset);
    this.offset = offset;
  }

  /** Byte offset (0-based, in the UTF-8 input) at which the error was detected. */
  public long offset() {
    return offset;
  }
}
