package org.moespark.model;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The weights of a Hugging Face model directory: either one {@code model.safetensors} or shards
 * listed by {@code model.safetensors.index.json} (models-and-formats.md §1.4: only
 * {@code weight_map} is required; {@code metadata} is optional; a tensor never spans shards but
 * the tensors of one module may sit in different shards). Shards are opened lazily on first use.
 *
 * <p>Shard names in the index must be plain file names inside the directory (no separators, no
 * {@code ..}) so that an index cannot point outside it. A tensor that is missing is reported with
 * the file(s) searched; a tensor the index places in a shard that lacks it is reported with both.
 */
public final class Checkpoint implements AutoCloseable {
  /** The index file name written by transformers. */
  public static final String INDEX_FILE = "model.safetensors.index.json";
  /** The single-file checkpoint name. */
  public static final String SINGLE_FILE = "model.safetensors";

  private final Path dir;
  private final Path indexFile; // null for a single file
  private final TreeMap<String, String> weightMap; // tensor -> shard file name
  private final Map<String, SafeTensors> open = new LinkedHashMap<>();
  private Path singleFile; // the file of a single-file checkpoint
  private boolean closed;

  private Checkpoint(Path dir, Path indexFile, TreeMap<String, String> weightMap) {
    this.dir = dir;
    this.indexFile = indexFile;
    this.weightMap = weightMap;
  }

  /**
   * Opens a model directory (sharded when it has {@value #INDEX_FILE}, else {@value #SINGLE_FILE}),
   * or a single {@code .safetensors} file given directly.
   */
  public static Checkpoint open(Path dirOrFile) throws IOException {
    if (dirOrFile == null) {
      throw new IllegalArgumentException("checkpoint path must not be null");
    }
    if (Files.isRegularFile(dirOrFile)) {
      return single(dirOrFile.toAbsolutePath().getParent(), dirOrFile);
    }
    if (!Files.isDirectory(dirOrFile)) {
      throw new SafeTensorsException("checkpoint " + dirOrFile + " is neither a directory nor a file");
    }
    Path index = dirOrFile.resolve(INDEX_FILE);
    if (Files.isRegularFile(index)) {
      return new Checkpoint(dirOrFile, index, readIndex(index));
    }
    Path single = dirOrFile.resolve(SINGLE_FILE);
    if (Files.isRegularFile(single)) {
      return single(dirOrFile, single);
    }
    List<String> present = new ArrayList<>();
    try (var s = Files.list(dirOrFile)) {
      s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".safetensors") || n.endsWith(".json"))
          .sorted().forEach(present::add);
    }
    throw new SafeTensorsException("checkpoint directory " + dirOrFile + " has neither " + INDEX_FILE
        + " nor " + SINGLE_FILE + " (found: " + present + ")");
  }

  private static Checkpoint single(Path dir, Path file) throws IOException {
    SafeTensors st = SafeTensors.open(file);
    TreeMap<String, String> map = new TreeMap<>();
    String fname = file.getFileName().toString();
    for (String n : st.names()) {
      map.put(n, fname);
    }
    Checkpoint c = new Checkpoint(dir, null, map);
    c.open.put(fname, st);
    c.singleFile = file;
    return c;
  }

  private static TreeMap<String, String> readIndex(Path index) throws IOException {
    long size = Files.size(index);
    if (size > Json.DEFAULT_MAX_BYTES) {
      throw new SafeTensorsException("index " + index + " is " + size + " bytes, over the limit of "
          + Json.DEFAULT_MAX_BYTES);
    }
    Object root;
    try {
      root = Json.parse(Files.readAllBytes(index));
    } catch (JsonException e) {
      throw new SafeTensorsException("index " + index + " is not valid JSON: " + e.getMessage(), e);
    }
    if (!(root instanceof Map)) {
      throw new SafeTensorsException("index " + index + " must be a JSON object, got " + Json.typeName(root));
    }
    Object wm = ((Map<?, ?>) root).get("weight_map");
    if (!(wm instanceof Map)) {
      throw new SafeTensorsException("index " + index + " has no \"weight_map\" object (got "
          + Json.typeName(wm) + ")");
    }
    TreeMap<String, String> map = new TreeMap<>();
    for (Map.Entry<?, ?> e : ((Map<?, ?>) wm).entrySet()) {
      Object f = e.getValue();
      if (!(f instanceof String)) {
        throw new SafeTensorsException("index " + index + ": weight_map entry for tensor '" + e.getKey()
            + "' must be a file name string, got " + Json.typeName(f));
      }
      String file = (String) f;
      if (file.isEmpty() || file.contains("/") || file.contains("\\") || file.equals("..") || file.equals(".")) {
        throw new SafeTensorsException("index " + index + ": weight_map entry for tensor '" + e.getKey()
            + "' names \"" + file + "\", which is not a plain file name in the checkpoint directory");
      }
      map.put((String) e.getKey(), file);
    }
    return map;
  }

  /**
   * Writes a {@value #INDEX_FILE} in transformers' shape: {@code {"metadata": {"total_size": N},
   * "weight_map": {...sorted...}}}, indented by 2.
   */
  public static void writeIndex(Path dir, Map<String, String> weightMap, long totalSize) throws IOException {
    if (weightMap == null || totalSize < 0) {
      throw new IllegalArgumentException("weightMap must be non-null and totalSize >= 0, got " + totalSize);
    }
    Map<String, Object> root = new LinkedHashMap<>();
    Map<String, Object> meta = new LinkedHashMap<>();
    meta.put("total_size", totalSize);
    root.put("metadata", meta);
    root.put("weight_map", new TreeMap<>(weightMap));
    Files.write(dir.resolve(INDEX_FILE), Json.writePretty(root).getBytes(StandardCharsets.UTF_8));
  }

  /** The model directory. */
  public Path dir() {
    return dir;
  }

  /** Whether the weights come from an index and shards. */
  public boolean isSharded() {
    return indexFile != null;
  }

  /** All tensor names, sorted. */
  public List<String> names() {
    return new ArrayList<>(weightMap.keySet());
  }

  /** The distinct weight files (sorted names, resolved against {@link #dir()}). */
  public List<Path> files() {
    List<Path> out = new ArrayList<>();
    for (String f : new TreeSet<>(weightMap.values())) {
      out.add(dir.resolve(f));
    }
    return out;
  }

  public boolean contains(String name) {
    return weightMap.containsKey(name);
  }

  /** The tensor, or empty when the checkpoint does not list it. */
  public Optional<Tensor> find(String name) {
    return contains(name) ? Optional.of(tensor(name)) : Optional.empty();
  }

  /** The tensor; a {@link SafeTensorsException} naming the file(s) searched when it is missing. */
  public Tensor tensor(String name) {
    String file = weightMap.get(name);
    if (file == null) {
      String where = indexFile != null ? "index " + indexFile + " over shards " + files()
          : "file " + singleFile;
      throw new SafeTensorsException("tensor '" + name + "' not found in checkpoint " + dir
          + " (searched " + where + ")");
    }
    SafeTensors st = shard(file);
    if (!st.contains(name)) {
      throw new SafeTensorsException("index " + indexFile + " places tensor '" + name + "' in "
          + st.path() + ", but that file has no such tensor");
    }
    return st.tensor(name);
  }

  private synchronized SafeTensors shard(String file) {
    if (closed) {
      throw new IllegalStateException("checkpoint " + dir + " is closed");
    }
    SafeTensors st = open.get(file);
    if (st == null) {
      Path p = dir.resolve(file);
      if (!Files.isRegularFile(p)) {
        throw new SafeTensorsException("index " + indexFile + " names shard " + file
            + ", which does not exist in " + dir);
      }
      try {
        st = SafeTensors.open(p);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException("reading shard " + p, e);
      }
      open.put(file, st);
    }
    return st;
  }

  /** Closes every shard opened so far. */
  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    IOException first = null;
    for (SafeTensors st : open.values()) {
      try {
        st.close();
      } catch (IOException e) {
        if (first == null) {
          first = e;
        }
      }
    }
    open.clear();
    if (first != null) {
      throw first;
    }
  }

  @Override
  public String toString() {
    return "Checkpoint[" + dir + (isSharded() ? ", sharded" : "") + ", " + weightMap.size() + " tensors]";
  }
}
