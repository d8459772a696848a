package org.moespark.notebooks;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Databricks notebook in exported SOURCE format, SQL flavour (spark-integration.md §5.1):
 * <ul>
 *   <li>line 1 {@code -- Databricks notebook source} (old exports append {@code  exported at ...});
 *   <li>cells separated by lines {@code -- COMMAND ----------};
 *   <li>a cell in another language has every line prefixed {@code -- MAGIC } and starts with its magic
 *       ({@code %md}, {@code %python}, {@code %scala}, {@code %sql}, {@code %sh}, {@code %run}, ...); a bare
 *       {@code -- MAGIC} is an empty line;
 *   <li>an optional title line {@code -- DBTITLE 0|1,<title>} at the top of a cell.
 * </ul>
 * A cell without magic is SQL. {@code %sql} magic cells are SQL too (their MAGIC prefixes stripped).
 * SQL cells are split into statements at top-level {@code ;} (not inside quotes, back-ticks or comments).
 *
 * <p>Parameters: {@code ${name}} in SQL is replaced by plain text substitution from a map before the
 * statement runs (the legacy Databricks widget syntax; Spark's own variable substitution is not relied on);
 * a {@code ${name}} with no value is an error naming the cell.
 */
final class Notebook {
  static final String HEADER = "-- Databricks notebook source";
  static final String SEPARATOR = "-- COMMAND ----------";
  private static final String MAGIC = "-- MAGIC";
  private static final Pattern PARAM = Pattern.compile("\\$\\{([A-Za-z_][A-Za-z0-9_]*)}");

  /** One cell: its 1-based number, language ({@code sql}, {@code md}, {@code python}, ...), title and text. */
  record Cell(int number, String language, String title, String text) {
    boolean isSql() {
      return language.equals("sql");
    }
  }

  private final String name;
  private final List<Cell> cells;

  private Notebook(String name, List<Cell> cells) {
    this.name = name;
    this.cells = cells;
  }

  String name() {
    return name;
  }

  List<Cell> cells() {
    return cells;
  }

  static Notebook read(Path file) throws IOException {
    return parse(file.getFileName().toString(), Files.readString(file, StandardCharsets.UTF_8));
  }

  /**
   * Parses notebook source text.
   *
   * @throws IllegalArgumentException when the header is missing, naming the notebook and the first line
   */
  static Notebook parse(String name, String source) {
    String[] lines = source.replace("\r\n", "\n").split("\n", -1);
    if (lines.length == 0 || !(lines[0].equals(HEADER) || lines[0].startsWith(HEADER + " exported at "))) {
      throw new IllegalArgumentException("notebook " + name + ": line 1 must be '" + HEADER + "', got '"
          + (lines.length == 0 ? "" : lines[0]) + "'");
    }
    List<List<String>> raw = new ArrayList<>();
    List<String> cur = new ArrayList<>();
    for (int i = 1; i < lines.length; i++) {
      if (lines[i].trim().equals(SEPARATOR)) {
        raw.add(cur);
        cur = new ArrayList<>();
      } else {
        cur.add(lines[i]);
      }
    }
    raw.add(cur);
    List<Cell> cells = new ArrayList<>();
    for (List<String> body : raw) {
      // drop blank lines around the cell
      int a = 0;
      int b = body.size();
      while (a < b && body.get(a).isBlank()) {
        a++;
      }
      while (b > a && body.get(b - 1).isBlank()) {
        b--;
      }
      List<String> ls = new ArrayList<>(body.subList(a, b));
      if (ls.isEmpty()) {
        continue;
      }
      String title = null;
      if (ls.get(0).startsWith("-- DBTITLE ")) {
        String t = ls.remove(0).substring("-- DBTITLE ".length());
        int comma = t.indexOf(',');
        title = comma >= 0 ? t.substring(comma + 1) : t;
      }
      int number = cells.size() + 1;
      String lang = "sql";
      if (!ls.isEmpty() && ls.get(0).startsWith(MAGIC)) {
        List<String> stripped = new ArrayList<>();
        for (int k = 0; k < ls.size(); k++) {
          String l = ls.get(k);
          if (l.equals(MAGIC)) {
            stripped.add("");
          } else if (l.startsWith(MAGIC + " ")) {
            stripped.add(l.substring(MAGIC.length() + 1));
          } else {
            throw new IllegalArgumentException("notebook " + name + ", cell " + number + ": line '" + l
                + "' of a MAGIC cell lacks the '-- MAGIC ' prefix");
          }
        }
        String first = stripped.get(0).trim();
        if (!first.startsWith("%")) {
          throw new IllegalArgumentException("notebook " + name + ", cell " + number
              + ": a MAGIC cell must start with a %magic, got '" + first + "'");
        }
        int sp = first.indexOf(' ');
        lang = (sp < 0 ? first.substring(1) : first.substring(1, sp));
        String rest = sp < 0 ? "" : first.substring(sp + 1);
        stripped.set(0, rest);
        ls = stripped;
      }
      cells.add(new Cell(number, lang, title, String.join("\n", ls).strip()));
    }
    return new Notebook(name, cells);
  }

  /** Replaces every {@code ${name}} of {@code sql} from {@code params}. */
  static String substitute(String sql, Map<String, String> params, String where) {
    Matcher m = PARAM.matcher(sql);
    StringBuilder sb = new StringBuilder();
    while (m.find()) {
      String v = params.get(m.group(1));
      if (v == null) {
        throw new IllegalArgumentException(where + ": parameter ${" + m.group(1) + "} has no value (given: "
            + params.keySet() + ")");
      }
      m.appendReplacement(sb, Matcher.quoteReplacement(v));
    }
    m.appendTail(sb);
    return sb.toString();
  }

  /**
   * Splits SQL text into statements at top-level semicolons; comments are kept inside their statement,
   * statements that are only whitespace and comments are dropped.
   */
  static List<String> statements(String sql) {
    List<String> out = new ArrayList<>();
    StringBuilder cur = new StringBuilder();
    boolean hasCode = false;
    int n = sql.length();
    for (int i = 0; i < n; i++) {
      char c = sql.charAt(i);
      if (c == '-' && i + 1 < n && sql.charAt(i + 1) == '-') {
        int e = sql.indexOf('\n', i);
        e = e < 0 ? n : e;
        cur.append(sql, i, e);
        i = e - 1;
      } else if (c == '/' && i + 1 < n && sql.charAt(i + 1) == '*') {
        int e = sql.indexOf("*/", i + 2);
        if (e < 0) {
          throw new IllegalArgumentException("unterminated /* comment in: " + sql);
        }
        cur.append(sql, i, e + 2);
        i = e + 1;
      } else if (c == '\'' || c == '"' || c == '`') {
        int j = i + 1;
        while (j < n && sql.charAt(j) != c) {
          if (sql.charAt(j) == '\\' && c != '`') {
            j++;
          }
          j++;
        }
        if (j >= n) {
          throw new IllegalArgumentException("unterminated " + c + " quote in: " + sql);
        }
        cur.append(sql, i, j + 1);
        hasCode = true;
        i = j;
      } else if (c == ';') {
        if (hasCode) {
          out.add(cur.toString().strip());
        }
        cur.setLength(0);
        hasCode = false;
      } else {
        cur.append(c);
        if (!Character.isWhitespace(c)) {
          hasCode = true;
        }
      }
    }
    if (hasCode) {
      out.add(cur.toString().strip());
    }
    return out;
  }
}
