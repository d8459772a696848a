package org.moespark.notebooks;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Runs the SQL cells of a {@link Notebook} on a Spark session, statement by statement, in order:
 * parameters substituted ({@link Notebook#substitute}), every query collected (so lazy SELECTs really
 * run), non-SQL cells ({@code %md}, {@code %python}, {@code %scala}, ...) skipped and counted. The first
 * failure is an {@link AssertionError} naming the notebook, the cell number, the statement and the cause.
 */
final class NotebookRunner {
  /** What a run did: SQL cells and statements executed, skipped cells by language, each cell's last result. */
  record Result(int sqlCells, int statements, Map<String, Integer> skipped, Map<Integer, List<Row>> lastRows) {}

  private NotebookRunner() {}

  static Result run(Notebook nb, SparkSession spark, Map<String, String> params) {
    int sqlCells = 0;
    int statements = 0;
    Map<String, Integer> skipped = new TreeMap<>();
    Map<Integer, List<Row>> last = new TreeMap<>();
    for (Notebook.Cell c : nb.cells()) {
      if (!c.isSql()) {
        skipped.merge(c.language(), 1, Integer::sum);
        continue;
      }
      sqlCells++;
      String where = "notebook " + nb.name() + ", cell " + c.number() + (c.title() == null ? "" : " (" + c.title() + ")");
      String sql = Notebook.substitute(c.text(), params, where);
      List<String> stmts = Notebook.statements(sql);
      for (int i = 0; i < stmts.size(); i++) {
        String s = stmts.get(i);
        try {
          Dataset<Row> df = spark.sql(s);
          last.put(c.number(), df.collectAsList());
        } catch (Exception | Error e) {
          throw new AssertionError(where + ", statement " + (i + 1) + " of " + stmts.size() + " failed:\n" + s
              + "\n--> " + e.getClass().getSimpleName() + ": " + firstLine(e.getMessage()), e);
        }
        statements++;
      }
    }
    return new Result(sqlCells, statements, skipped, last);
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  static List<Row> rows(Result r, int cell) {
    List<Row> rows = r.lastRows().get(cell);
    return rows == null ? new ArrayList<>() : rows;
  }
}
