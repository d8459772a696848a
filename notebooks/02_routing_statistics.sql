-- Databricks notebook source
-- MAGIC %md
-- MAGIC # Routing statistics in SQL
-- MAGIC
-- MAGIC Reads a scored data set (`id, output, topk_ids, topk_weights`, one row per token, as written by
-- MAGIC `bin/moe score` or the scoring notebook) and computes expert load, load imbalance, routing entropy and
-- MAGIC expert co-activation. `bin/moe stats` computes the same numbers and draws them as an HTML report.
-- MAGIC
-- MAGIC **Parameters** (plain text substitution of `${name}`): `${scored_path}` — the scored Parquet data set;
-- MAGIC `${num_experts}` — the number of experts E of the layer.

-- COMMAND ----------

CREATE OR REPLACE TEMP VIEW scored AS SELECT * FROM parquet.`${scored_path}`

-- COMMAND ----------

-- MAGIC %md
-- MAGIC ## Expert load
-- MAGIC Tokens per expert (every expert of `0 … E-1`, also those no token chose), its share of all assignments,
-- MAGIC and the summed routing weight.

-- COMMAND ----------

CREATE OR REPLACE TEMP VIEW assignments AS
SELECT id, pos + 1 AS rank, e AS expert, topk_weights[pos] AS weight
FROM scored LATERAL VIEW posexplode(topk_ids) t AS pos, e;

CREATE OR REPLACE TEMP VIEW expert_load AS
SELECT x.expert,
       coalesce(a.tokens, 0) AS tokens,
       coalesce(a.tokens, 0) / (SELECT count(*) FROM assignments) AS share,
       coalesce(a.weight_sum, 0D) AS weight_sum
FROM (SELECT explode(sequence(0, ${num_experts} - 1)) AS expert) x
LEFT JOIN (SELECT expert, count(*) AS tokens, sum(weight) AS weight_sum FROM assignments GROUP BY expert) a
  ON a.expert = x.expert;

SELECT * FROM expert_load ORDER BY expert

-- COMMAND ----------

-- MAGIC %md
-- MAGIC ## Imbalance and load entropy
-- MAGIC Imbalance = max load / mean load (1 = perfectly balanced). Load entropy = −Σ pₑ ln pₑ over the expert shares
-- MAGIC (ln E when balanced).

-- COMMAND ----------

CREATE OR REPLACE TEMP VIEW load_summary AS
SELECT max(tokens) / avg(tokens) AS imbalance,
       -sum(CASE WHEN share > 0 THEN share * ln(share) ELSE 0 END) AS load_entropy,
       ln(${num_experts}) AS max_entropy
FROM expert_load;

SELECT * FROM load_summary

-- COMMAND ----------

-- MAGIC %md
-- MAGIC ## Per-token routing entropy
-- MAGIC Entropy of a token's top-k weights after normalising them to sum to 1 (0 = one expert takes everything,
-- MAGIC ln K = equal weights).

-- COMMAND ----------

CREATE OR REPLACE TEMP VIEW token_entropy AS
SELECT id,
       -aggregate(topk_weights, 0D,
                  (acc, w) -> acc + CASE WHEN w > 0 THEN (w / total) * ln(w / total) ELSE 0D END) AS entropy
FROM (SELECT id, topk_weights, aggregate(topk_weights, 0D, (acc, w) -> acc + w) AS total FROM scored);

SELECT count(*) AS tokens, avg(entropy) AS mean_entropy, percentile(entropy, 0.5) AS median_entropy,
       min(entropy) AS min_entropy, max(entropy) AS max_entropy
FROM token_entropy

-- COMMAND ----------

-- MAGIC %md
-- MAGIC ## Top-k weight by rank

-- COMMAND ----------

SELECT rank, count(*) AS tokens, avg(weight) AS mean_weight, min(weight) AS min_weight, max(weight) AS max_weight
FROM assignments GROUP BY rank ORDER BY rank

-- COMMAND ----------

-- MAGIC %md
-- MAGIC ## Expert co-activation
-- MAGIC How often two experts are chosen for the same token (unordered pairs, `expert_a < expert_b`).

-- COMMAND ----------

CREATE OR REPLACE TEMP VIEW coactivation AS
SELECT least(a.expert, b.expert) AS expert_a, greatest(a.expert, b.expert) AS expert_b, count(*) AS tokens
FROM assignments a JOIN assignments b ON a.id = b.id AND a.rank < b.rank
GROUP BY 1, 2;

SELECT * FROM coactivation ORDER BY tokens DESC, expert_a, expert_b LIMIT 20
