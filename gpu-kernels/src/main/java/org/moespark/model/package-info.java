/**
 * Model loading: Hugging Face checkpoints and configs for the MoE layer.
 *
 * <ul>
 *   <li>{@link org.moespark.model.Json} — strict JSON parser/writer (no Jackson/Gson in gpu-kernels).
 *   <li>{@link org.moespark.model.SafeTensors}, {@link org.moespark.model.Tensor},
 *       {@link org.moespark.model.DType}, {@link org.moespark.model.SafeTensorsWriter} — the safetensors
 *       format, validated and memory-mapped (64-bit offsets, no 2 GiB limit per file).
 *   <li>{@link org.moespark.model.Checkpoint} — a model directory, single file or sharded via
 *       {@code model.safetensors.index.json}.
 *   <li>{@link org.moespark.model.MoeConfig} — {@code config.json} of mixtral, qwen2_moe, qwen3_moe, olmoe,
 *       deepseek_v3 and gpt_oss: sizes, routing, shared experts, which layers are MoE, quantization.
 *   <li>{@link org.moespark.model.MoeBlockWeights} / {@link org.moespark.model.WeightTensor} — one layer's
 *       router and experts in a canonical {@code [out, in]} orientation, raw number formats kept
 *       (F32/F16/BF16, block FP8, MXFP4, NVFP4).
 * </ul>
 *
 * <p>Errors in files are {@link org.moespark.model.SafeTensorsException}s (an
 * {@link java.lang.IllegalArgumentException}) naming the file and tensor; I/O failures are
 * {@link java.io.IOException}s.
 */
package org.moespark.model;
