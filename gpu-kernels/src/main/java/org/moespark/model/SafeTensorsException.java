package org.moespark.model;

/**
 * A safetensors file, index or checkpoint that cannot be used as it is: malformed header, a
 * tensor whose metadata is inconsistent, a missing tensor, or a shape that does not match the
 * model configuration. The message names the file and, where there is one, the tensor.
 */
public class SafeTensorsException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public SafeTensorsException(String message) {
    super(message);
  }

  public SafeTensorsException(String message, Throwable cause) {
    super(message, cause);
  }
}
