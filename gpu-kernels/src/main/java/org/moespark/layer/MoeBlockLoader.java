package org.moespark.layer;

import java.nio.file.Path;

/** Reads one MoE block of a Hugging Face checkpoint into a {@link MoeBlockSpec}. */
final class MoeBlockLoader {
  private MoeBlockLoader() {}

  static MoeBlockSpec load(Path modelDir, int layer) {
    throw new UnsupportedOperationException("checkpoint loading needs org.moespark.model (not landed yet)");
  }
}
