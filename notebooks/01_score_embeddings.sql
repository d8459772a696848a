-- Databricks notebook source
-- MAGIC %md
-- MAGIC # Score embeddings with an MoE layer (`moe_score`)
-- MAGIC
-- MAGIC Runs MoE block `0` of a Hugging Face checkpoint (Mixtral, Qwen2/3-MoE, OLMoE, DeepSeek-V3, GPT-OSS) over a
-- MAGIC table of embeddings, on the GPU when the executors have one and on the exact Java CPU backend otherwise.
-- MAGIC
-- MAGIC **Parameters** (plain text substitution of `${name}` before the cells run; on Databricks define them as
-- MAGIC widgets): `${data_path}` — a Parquet data set with `id` and `embedding array<float>` (e.g. from
-- MAGIC `bin/moe gen embeddings`); `${model_path}` — a model directory visible to every executor (local path, DBFS,
-- MAGIC `s3a://…`); `${output_path}` — where the scored data set is written.
-- MAGIC
-- MAGIC **Install**: on a cluster, put the moespark jars on the class path (init script copying them to
-- MAGIC `/databricks/jars`) and set `spark.sql.extensions=org.moespark.spark.MoeExtensions`; or, on a single-user
-- MAGIC cluster, run the Scala cell below once per session.

-- COMMAND ----------

-- MAGIC %scala
-- MAGIC org.moespark.spark.MoeExtensions.install(spark)

-- COMMAND ----------

-- MAGIC %md
-- MAGIC ## The input

-- COMMAND ----------

CREATE OR REPLACE TEMP VIEW embeddings AS
SELECT id, embedding FROM parquet.`${data_path}`;

SELECT count(*) AS rows, min(size(embedding)) AS min_dim, max(size(embedding)) AS max_dim FROM embeddings

-- COMMAND ----------

-- MAGIC %md
-- MAGIC ## Settings
-- MAGIC Session-wide keys (each can also be overridden per call with a 4th argument, `map('backend', 'cpu')`):
-- MAGIC `spark.moespark.backend` (auto|cpu|gpu), `spark.moespark.batchRows` (rows per layer call),
-- MAGIC `spark.moespark.badRows` (error|skip|null), `spark.moespark.compute` (fp32|bf16).

-- COMMAND ----------

SET spark.moespark.backend = auto;
SET spark.moespark.batchRows = 4096

-- COMMAND ----------

-- MAGIC %md
-- MAGIC ## The MoE block output
-- MAGIC `moe_score(embedding, model, layer)` returns the block output (`array<float>`, hidden values; no residual).

-- COMMAND ----------

SELECT id, slice(moe_score(embedding, '${model_path}', 0), 1, 4) AS first_outputs
FROM embeddings
ORDER BY id
LIMIT 10

-- COMMAND ----------

-- MAGIC %md
-- MAGIC ## Output plus routing
-- MAGIC `moe_score_routed` also returns which experts each token went to and with which weights.

-- COMMAND ----------

CREATE OR REPLACE TEMP VIEW scored AS
SELECT id, r.output AS output, r.topk_ids AS topk_ids, r.topk_weights AS topk_weights
FROM (SELECT id, moe_score_routed(embedding, '${model_path}', 0) AS r FROM embeddings);

SELECT id, topk_ids, topk_weights FROM scored ORDER BY id LIMIT 10

-- COMMAND ----------

-- DBTITLE 1,Per-call options: force the CPU backend for this query only
SELECT count(*) AS scored_rows
FROM (SELECT moe_score(embedding, '${model_path}', 0, map('backend', 'cpu', 'batchRows', '512')) AS y FROM embeddings)
WHERE size(y) > 0

-- COMMAND ----------

-- MAGIC %md
-- MAGIC ## Save the scored data set
-- MAGIC The layout `bin/moe stats` and the routing notebook read: `id, output, topk_ids, topk_weights`.

-- COMMAND ----------

INSERT OVERWRITE DIRECTORY '${output_path}' USING parquet
SELECT id, output, topk_ids, topk_weights FROM scored

-- COMMAND ----------

SELECT count(*) AS written FROM parquet.`${output_path}`
