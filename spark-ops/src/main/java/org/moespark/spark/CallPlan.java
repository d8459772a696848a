package org.moespark.spark;

import java.io.Serializable;

/**
 * One {@code moe_score} call as the executors run it, fixed on the driver: the model, the settings, and
 * where its input column sits in the child's batches.
 *
 * @param name the call as SQL text (for messages)
 * @param uri model URI
 * @param layer layer index
 * @param routed whether the result is the routed struct
 * @param settings backend, batch size, bad-row policy, compute, loader
 * @param inputOrdinal column of the embedding in the child's output
 * @param inputKind how the embedding is encoded
 */
record CallPlan(String name, String uri, int layer, boolean routed, MoeConf.Settings settings, int inputOrdinal,
    InputKind inputKind) implements Serializable {

  /** Encodings of the embedding column. */
  enum InputKind { FLOAT_ARRAY, DOUBLE_ARRAY, BINARY_LE_FLOAT32 }
}
