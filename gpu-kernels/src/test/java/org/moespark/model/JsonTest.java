package org.moespark.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {

  @Test
  void parsesAllValueKinds() {
    Object v = Json.parse(" {\"a\": [1, -2, 3.5, 1e2, -0, true, false, null], \"b\": {\"c\": \"x\"}, \"d\": {}, \"e\": []} \n");
    Map<?, ?> m = (Map<?, ?>) v;
    assertEquals(List.of("a", "b", "d", "e"), List.copyOf(m.keySet()), "document order kept");
    List<?> a = (List<?>) m.get("a");
    assertEquals(1L, a.get(0));
    assertEquals(-2L, a.get(1));
    assertEquals(3.5, a.get(2));
    assertEquals(100.0, a.get(3));
    assertEquals(0L, a.get(4));
    assertEquals(Boolean.TRUE, a.get(5));
    assertEquals(Boolean.FALSE, a.get(6));
    assertNull(a.get(7));
    assertEquals("x", ((Map<?, ?>) m.get("b")).get("c"));
    assertTrue(((Map<?, ?>) m.get("d")).isEmpty());
    assertTrue(((List<?>) m.get("e")).isEmpty());
  }

  @Test
  void integersBeyondLongBecomeBigInteger() {
    assertEquals(Long.MAX_VALUE, Json.parse("9223372036854775807"));
    assertEquals(Long.MIN_VALUE, Json.parse("-9223372036854775808"));
    assertEquals(new BigInteger("9223372036854775808"), Json.parse("9223372036854775808"));
  }

  @Test
  void decodesEscapesAndUtf8() {
    assertEquals("q\"b\\s/\b\f\n\r\t", Json.parse("\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\""));
    assertEquals("\u00e9\u4e2d", Json.parse("\"\\u00e9\\u4E2D\""));
    // U+1F600 as a surrogate pair escape and as raw 4-byte UTF-8
    assertEquals(new String(Character.toChars(0x1F600)), Json.parse("\"\\ud83d\\ude00\""));
    byte[] raw = {'"', (byte) 0xF0, (byte) 0x9F, (byte) 0x98, (byte) 0x80, '"'};
    assertEquals(new String(Character.toChars(0x1F600)), Json.parse(raw));
    assertEquals("\u00e9", Json.parse(new byte[] {'"', (byte) 0xC3, (byte) 0xA9, '"'}));
  }

  private static JsonException fails(String text) {
    return assertThrows(JsonException.class, () -> Json.parse(text), text);
  }

  private static JsonException fails(byte[] bytes) {
    return assertThrows(JsonException.class, () -> Json.parse(bytes));
  }

  @Test
  void rejectsMalformedTextWithTheByteOffset() {
    assertEquals(9, fails("{\"a\": 1, }").offset(), "trailing comma: the '}' at byte 9");
    assertEquals(2, fails("[01]").offset(), "leading zero: the digit after it");
    assertEquals(4, fails("\"abc").offset(), "unterminated string ends at byte 4");
    assertEquals(3, fails("[1 2]").offset(), "the unexpected 2");
    assertEquals(1, fails("{1: 2}").offset(), "non-string key");
    assertEquals(0, fails("NaN").offset());
    assertEquals(1, fails("-Infinity").offset());
    assertEquals(3, fails("[1.]").offset());
    assertEquals(8, fails("{\"a\":1} x").offset(), "trailing garbage");
    assertEquals(0, fails("").offset());
    assertEquals(5, fails("{\"a\":").offset());
    assertEquals(0, fails("tru").offset());
    assertEquals(2, fails("\"\\x\"").offset(), "bad escape");
    assertEquals(5, fails("\"\\u12G4\"").offset(), "bad hex digit");
    assertEquals(1, fails("\"\\ud83d\"").offset(), "lone high surrogate");
    assertEquals(1, fails("\"\\ude00\"").offset(), "lone low surrogate");
    assertEquals(1, fails("\"\\ud83d\\u0041\"").offset(), "high surrogate + non-low");
    assertEquals(8, fails("{\"a\":1, \"a\":2}").offset(), "duplicate key reported at the second key");
    assertTrue(fails("1e999").getMessage().contains("out of the double range"));
  }

  @Test
  void rejectsInvalidUtf8AndControlCharacters() {
    assertEquals(1, fails(new byte[] {'"', (byte) 0xC0, (byte) 0x80, '"'}).offset(), "overlong NUL");
    assertEquals(1, fails(new byte[] {'"', (byte) 0x80, '"'}).offset(), "lone continuation byte");
    assertEquals(1, fails(new byte[] {'"', (byte) 0xED, (byte) 0xA0, (byte) 0x80, '"'}).offset(), "encoded surrogate");
    assertEquals(2, fails(new byte[] {'"', (byte) 0xC3, 'x', '"'}).offset(), "bad continuation");
    assertEquals(1, fails(new byte[] {'"', (byte) 0xF5, (byte) 0x80, (byte) 0x80, (byte) 0x80, '"'}).offset());
    assertEquals(2, fails("\"a\nb\"").offset(), "raw newline in a string");
    JsonException e = fails(new byte[] {'"', 0x01, '"'});
    assertTrue(e.getMessage().contains("control character 0x01"), e.getMessage());
  }

  @Test
  void enforcesTheDepthLimit() {
    String deep = "[".repeat(Json.DEFAULT_MAX_DEPTH + 1) + "]".repeat(Json.DEFAULT_MAX_DEPTH + 1);
    JsonException e = fails(deep);
    assertEquals(Json.DEFAULT_MAX_DEPTH, e.offset(), "the first bracket beyond the limit");
    String ok = "[".repeat(Json.DEFAULT_MAX_DEPTH) + "]".repeat(Json.DEFAULT_MAX_DEPTH);
    assertTrue(Json.parse(ok) instanceof List);
    byte[] b = "[[[1]]]".getBytes(StandardCharsets.UTF_8);
    assertThrows(JsonException.class, () -> Json.parse(b, 0, b.length, 2));
  }

  @Test
  void offsetsAreRelativeToTheRange() {
    byte[] b = "xxxx[1,]".getBytes(StandardCharsets.UTF_8);
    JsonException e = assertThrows(JsonException.class, () -> Json.parse(b, 4, 4, 8));
    assertEquals(3, e.offset());
  }

  @Test
  void writerOutputParsesBackToTheSameValues() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("s", "a\"b\\c\n\u0001\u00e9");
    m.put("i", 42L);
    m.put("d", 2.5);
    m.put("small", 1e-6);
    m.put("t", true);
    m.put("n", null);
    m.put("l", List.of(1L, 2L));
    m.put("arr", new long[] {3, 4});
    m.put("empty", Map.of());
    assertEquals("{\"s\":\"a\\\"b\\\\c\\n\\u0001\u00e9\",\"i\":42,\"d\":2.5,\"small\":1.0E-6,\"t\":true,\"n\":null,"
        + "\"l\":[1,2],\"arr\":[3,4],\"empty\":{}}", Json.write(m));
    Map<?, ?> back = (Map<?, ?>) Json.parse(Json.writePretty(m));
    assertEquals(m.get("s"), back.get("s"));
    assertEquals(42L, back.get("i"));
    assertEquals(1e-6, back.get("small"));
    assertEquals(List.of(3L, 4L), back.get("arr"));
    assertTrue(back.containsKey("n"));
    assertThrows(IllegalArgumentException.class, () -> Json.write(Double.NaN));
  }
}
