package org.moespark.notebooks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The notebook parser, statement splitter and parameter substitution on hand-written sources. */
class NotebookTest {
  private static final String SRC = String.join("\n",
      "-- Databricks notebook source",
      "-- MAGIC %md",
      "-- MAGIC # Title",
      "-- MAGIC",
      "-- MAGIC text",
      "",
      "-- COMMAND ----------",
      "",
      "SELECT 1 AS a;",
      "-- a comment; with a semicolon",
      "SELECT 'x;y' AS `b;c`, \"q;\" AS d; /* block; */ SELECT 3",
      "",
      "-- COMMAND ----------",
      "",
      "-- DBTITLE 1,Python here",
      "-- MAGIC %python",
      "-- MAGIC print(1)",
      "",
      "-- COMMAND ----------",
      "",
      "-- MAGIC %sql SELECT ${x} AS p",
      "-- MAGIC FROM t",
      "",
      "-- COMMAND ----------",
      "",
      "");

  @Test
  void cellsLanguagesTitles() {
    Notebook nb = Notebook.parse("n.sql", SRC);
    List<Notebook.Cell> c = nb.cells();
    assertEquals(4, c.size(), "the trailing empty cell is dropped");
    assertEquals("md", c.get(0).language());
    assertEquals("# Title\n\ntext", c.get(0).text());
    assertEquals("sql", c.get(1).language());
    assertNull(c.get(1).title());
    assertEquals("python", c.get(2).language());
    assertEquals("Python here", c.get(2).title());
    assertEquals("print(1)", c.get(2).text());
    assertEquals("sql", c.get(3).language());
    assertEquals("SELECT ${x} AS p\nFROM t", c.get(3).text());
    assertEquals(List.of(1, 2, 3, 4), c.stream().map(Notebook.Cell::number).toList());
  }

  @Test
  void statementsSplitOnlyAtTopLevelSemicolons() {
    List<String> s = Notebook.statements(Notebook.parse("n.sql", SRC).cells().get(1).text());
    assertEquals(List.of("SELECT 1 AS a",
        "-- a comment; with a semicolon\nSELECT 'x;y' AS `b;c`, \"q;\" AS d",
        "/* block; */ SELECT 3"), s);
    assertEquals(List.of("SELECT 'it\\'s; ok'"), Notebook.statements("SELECT 'it\\'s; ok';\n-- only a comment;\n"));
    assertEquals(List.of(), Notebook.statements("  ;\n-- nothing\n;"));
  }

  @Test
  void headerIsRequired() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Notebook.parse("bad.sql", "SELECT 1\n-- COMMAND ----------\nSELECT 2"));
    assertTrue(e.getMessage().contains("bad.sql") && e.getMessage().contains("got 'SELECT 1'"), e.getMessage());
    assertEquals(1, Notebook.parse("old.sql", "-- Databricks notebook source exported at Tue, 1 Jan\nSELECT 1").cells().size());
  }

  @Test
  void magicCellLinesNeedThePrefix() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Notebook.parse("m.sql", "-- Databricks notebook source\n-- MAGIC %md\nplain line"));
    assertTrue(e.getMessage().contains("cell 1") && e.getMessage().contains("'plain line'"), e.getMessage());
  }

  @Test
  void substitution() {
    assertEquals("SELECT '/d/p' AS a, 3", Notebook.substitute("SELECT '${path}' AS a, ${n}", Map.of("path", "/d/p", "n", "3"), "w"));
    assertEquals("SELECT '$1\\x'", Notebook.substitute("SELECT '${v}'", Map.of("v", "$1\\x"), "w"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Notebook.substitute("SELECT ${missing}", Map.of("x", "1"), "notebook n.sql, cell 4"));
    assertTrue(e.getMessage().contains("notebook n.sql, cell 4") && e.getMessage().contains("${missing}"), e.getMessage());
  }
}
