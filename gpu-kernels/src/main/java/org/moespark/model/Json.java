package org.moespark.model;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small strict JSON (RFC 8259) parser and writer, so that gpu-kernels needs neither Jackson nor
 * Gson (and cannot clash with Spark's Jackson).
 *
 * <p>Parsed values map to: object → unmodifiable {@code Map<String,Object>} in document order;
 * array → unmodifiable {@code List<Object>}; string → {@link String}; integer without fraction or
 * exponent → {@link Long} (or {@link BigInteger} when it does not fit a long); other numbers →
 * {@link Double}; {@code true}/{@code false} → {@link Boolean}; {@code null} → Java {@code null}
 * (use {@code containsKey} to tell a null member from a missing one).
 *
 * <p>Strict: the input must be valid UTF-8 (no overlong forms, no encoded surrogates), strings may
 * not contain raw control characters, {@code \\u} escapes must form valid surrogate pairs, no
 * comments, no trailing commas, no leading zeros, no NaN/Infinity, no duplicate object keys, and
 * nothing but JSON whitespace after the value. Nesting is limited to {@link #DEFAULT_MAX_DEPTH}
 * (or the given limit) and the input to {@link #DEFAULT_MAX_BYTES} bytes. Every error is a
 * {@link JsonException} naming the byte offset.
 */
public final class Json {
  /** Default nesting limit (objects + arrays). */
  public static final int DEFAULT_MAX_DEPTH = 128;
  /** Default input size limit, equal to the safetensors reference reader's header cap. */
  public static final int DEFAULT_MAX_BYTES = 100_000_000;

  private final byte[] in;
  private final int end;
  private final int maxDepth;
  private final int base;
  private int pos;

  private Json(byte[] in, int off, int len, int maxDepth) {
    this.in = in;
    this.pos = off;
    this.base = off;
    this.end = off + len;
    this.maxDepth = maxDepth;
  }

  /** Parses a whole UTF-8 JSON text with the default limits. */
  public static Object parse(byte[] utf8) {
    return parse(utf8, 0, utf8.length, DEFAULT_MAX_DEPTH);
  }

  /** Parses a JSON text given as a Java string (encoded to UTF-8 first; offsets refer to those bytes). */
  public static Object parse(String text) {
    return parse(text.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Parses {@code len} bytes of {@code utf8} starting at {@code off}; error offsets are relative to
   * {@code off}. Surrounding JSON whitespace is allowed.
   */
  public static Object parse(byte[] utf8, int off, int len, int maxDepth) {
    if (utf8 == null) {
      throw new IllegalArgumentException("utf8 must not be null");
    }
    if (off < 0 || len < 0 || off > utf8.length - len) {
      throw new IllegalArgumentException(
          "range [" + off + ", " + off + "+" + len + ") outside an input of " + utf8.length + " bytes");
    }
    if (len > DEFAULT_MAX_BYTES) {
      throw new JsonException("JSON text of " + len + " bytes exceeds the limit of " + DEFAULT_MAX_BYTES, 0);
    }
    if (maxDepth < 1) {
      throw new IllegalArgumentException("maxDepth must be >= 1, got " + maxDepth);
    }
    Json p = new Json(utf8, off, len, maxDepth);
    p.skipWs();
    Object v = p.value(0);
    p.skipWs();
    if (p.pos != p.end) {
      throw p.error("unexpected trailing content '" + p.describe() + "' after the JSON value");
    }
    return v;
  }

  /** Parses a text whose top level must be an object. */
  @SuppressWarnings("unchecked")
  public static Map<String, Object> parseObject(byte[] utf8) {
    Object v = parse(utf8);
    if (!(v instanceof Map)) {
      throw new JsonException("top-level JSON value must be an object, got " + typeName(v), 0);
    }
    return (Map<String, Object>) v;
  }

  /** A short name of a parsed value's JSON type, for error messages. */
  public static String typeName(Object v) {
    if (v == null) {
      return "null";
    } else if (v instanceof Map) {
      return "object";
    } else if (v instanceof List) {
      return "array";
    } else if (v instanceof String) {
      return "string";
    } else if (v instanceof Boolean) {
      return "boolean";
    } else if (v instanceof Number) {
      return "number";
    }
    return v.getClass().getSimpleName();
  }

  // ------------------------------------------------------------------------------------------
  // parser

  private JsonException error(String msg) {
    return new JsonException(msg, pos - base);
  }

  private String describe() {
    if (pos >= end) {
      return "end of input";
    }
    int b = in[pos] & 0xFF;
    return b >= 0x20 && b < 0x7F ? String.valueOf((char) b) : String.format("0x%02X", b);
  }

  private void skipWs() {
    while (pos < end) {
      byte b = in[pos];
      if (b == ' ' || b == '\t' || b == '\n' || b == '\r') {
        pos++;
      } else {
        break;
      }
    }
  }

  private Object value(int depth) {
    if (pos >= end) {
      throw error("unexpected end of input, expected a value");
    }
    byte b = in[pos];
    switch (b) {
      case '{':
        return object(depth + 1);
      case '[':
        return array(depth + 1);
      case '"':
        return string();
      case 't':
        literal("true");
        return Boolean.TRUE;
      case 'f':
        literal("false");
        return Boolean.FALSE;
      case 'n':
        literal("null");
        return null;
      default:
        if (b == '-' || (b >= '0' && b <= '9')) {
          return number();
        }
        throw error("unexpected character '" + describe() + "', expected a value");
    }
  }

  private void literal(String word) {
    for (int i = 0; i < word.length(); i++) {
      if (pos + i >= end || in[pos + i] != word.charAt(i)) {
        throw error("invalid literal, expected '" + word + "'");
      }
    }
    pos += word.length();
  }

  private Map<String, Object> object(int depth) {
    if (depth > maxDepth) {
      throw error("nesting deeper than the limit of " + maxDepth);
    }
    pos++; // {
    LinkedHashMap<String, Object> map = new LinkedHashMap<>();
    skipWs();
    if (pos < end && in[pos] == '}') {
      pos++;
      return Collections.unmodifiableMap(map);
    }
    while (true) {
      skipWs();
      if (pos >= end || in[pos] != '"') {
        throw error("expected a string key, got '" + describe() + "'");
      }
      int keyPos = pos;
      String key = string();
      skipWs();
      if (pos >= end || in[pos] != ':') {
        throw error("expected ':' after key \"" + key + "\", got '" + describe() + "'");
      }
      pos++;
      skipWs();
      Object v = value(depth);
      if (map.containsKey(key)) {
        throw new JsonException("duplicate key \"" + key + "\"", keyPos - base);
      }
      map.put(key, v);
      skipWs();
      if (pos >= end) {
        throw error("unexpected end of input inside an object");
      }
      byte b = in[pos++];
      if (b == '}') {
        return Collections.unmodifiableMap(map);
      }
      if (b != ',') {
        pos--;
        throw error("expected ',' or '}' in an object, got '" + describe() + "'");
      }
    }
  }

  private List<Object> array(int depth) {
    if (depth > maxDepth) {
      throw error("nesting deeper than the limit of " + maxDepth);
    }
    pos++; // [
    ArrayList<Object> list = new ArrayList<>();
    skipWs();
    if (pos < end && in[pos] == ']') {
      pos++;
      return Collections.unmodifiableList(list);
    }
    while (true) {
      skipWs();
      list.add(value(depth));
      skipWs();
      if (pos >= end) {
        throw error("unexpected end of input inside an array");
      }
      byte b = in[pos++];
      if (b == ']') {
        return Collections.unmodifiableList(list);
      }
      if (b != ',') {
        pos--;
        throw error("expected ',' or ']' in an array, got '" + describe() + "'");
      }
    }
  }

  private Object number() {
    int start = pos;
    boolean integral = true;
    if (in[pos] == '-') {
      pos++;
    }
    if (pos >= end) {
      throw error("truncated number");
    }
    if (in[pos] == '0') {
      pos++;
      if (pos < end && in[pos] >= '0' && in[pos] <= '9') {
        throw error("leading zero in a number");
      }
    } else if (in[pos] >= '1' && in[pos] <= '9') {
      digits();
    } else {
      throw error("invalid number, expected a digit, got '" + describe() + "'");
    }
    if (pos < end && in[pos] == '.') {
      integral = false;
      pos++;
      if (pos >= end || in[pos] < '0' || in[pos] > '9') {
        throw error("expected a digit after the decimal point");
      }
      digits();
    }
    if (pos < end && (in[pos] == 'e' || in[pos] == 'E')) {
      integral = false;
      pos++;
      if (pos < end && (in[pos] == '+' || in[pos] == '-')) {
        pos++;
      }
      if (pos >= end || in[pos] < '0' || in[pos] > '9') {
        throw error("expected a digit in the exponent");
      }
      digits();
    }
    String s = new String(in, start, pos - start, StandardCharsets.US_ASCII);
    if (integral) {
      if (pos - start <= 18) {
        return Long.parseLong(s);
      }
      BigInteger big = new BigInteger(s);
      return big.bitLength() < 64 ? (Object) big.longValue() : big;
    }
    double d = Double.parseDouble(s);
    if (Double.isInfinite(d)) {
      throw new JsonException("number " + s + " is out of the double range", start - base);
    }
    return d;
  }

  private void digits() {
    while (pos < end && in[pos] >= '0' && in[pos] <= '9') {
      pos++;
    }
  }

  private String string() {
    pos++; // opening quote
    StringBuilder sb = new StringBuilder();
    while (true) {
      if (pos >= end) {
        throw error("unterminated string");
      }
      int b = in[pos] & 0xFF;
      if (b == '"') {
        pos++;
        return sb.toString();
      }
      if (b == '\\') {
        escape(sb);
      } else if (b < 0x20) {
        throw error(String.format("raw control character 0x%02X in a string", b));
      } else if (b < 0x80) {
        sb.append((char) b);
        pos++;
      } else {
        utf8(sb, b);
      }
    }
  }

  private void escape(StringBuilder sb) {
    int at = pos;
    pos++;
    if (pos >= end) {
      throw error("unterminated escape");
    }
    byte c = in[pos++];
    switch (c) {
      case '"':
        sb.append('"');
        break;
      case '\\':
        sb.append('\\');
        break;
      case '/':
        sb.append('/');
        break;
      case 'b':
        sb.append('\b');
        break;
      case 'f':
        sb.append('\f');
        break;
      case 'n':
        sb.append('\n');
        break;
      case 'r':
        sb.append('\r');
        break;
      case 't':
        sb.append('\t');
        break;
      case 'u': {
        int u = hex4();
        if (Character.isHighSurrogate((char) u)) {
          if (pos + 1 < end && in[pos] == '\\' && in[pos + 1] == 'u') {
            pos += 2;
            int lo = hex4();
            if (!Character.isLowSurrogate((char) lo)) {
              throw new JsonException(String.format("high surrogate \\u%04X not followed by a low surrogate", u), at - base);
            }
            sb.append((char) u).append((char) lo);
          } else {
            throw new JsonException(String.format("lone high surrogate \\u%04X", u), at - base);
          }
        } else if (Character.isLowSurrogate((char) u)) {
          throw new JsonException(String.format("lone low surrogate \\u%04X", u), at - base);
        } else {
          sb.append((char) u);
        }
        break;
      }
      default:
        pos--;
        throw error("invalid escape '\\" + describe() + "'");
    }
  }

  private int hex4() {
    if (pos + 4 > end) {
      throw error("truncated \\u escape");
    }
    int v = 0;
    for (int i = 0; i < 4; i++) {
      int c = in[pos];
      int d = Character.digit(c, 16);
      if (d < 0 || c > 'f') {
        throw error("invalid hex digit in a \\u escape");
      }
      v = (v << 4) | d;
      pos++;
    }
    return v;
  }

  private void utf8(StringBuilder sb, int b0) {
    int need;
    int cp;
    int min;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 1;
      cp = b0 & 0x1F;
      min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 2;
      cp = b0 & 0x0F;
      min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 3;
      cp = b0 & 0x07;
      min = 0x10000;
    } else {
      throw error(String.format("invalid UTF-8 lead byte 0x%02X", b0));
    }
    int start = pos;
    pos++;
    for (int i = 0; i < need; i++) {
      if (pos >= end) {
        throw new JsonException("truncated UTF-8 sequence", start - base);
      }
      int c = in[pos] & 0xFF;
      if ((c & 0xC0) != 0x80) {
        throw new JsonException(String.format("invalid UTF-8 continuation byte 0x%02X", c), pos - base);
      }
      cp = (cp << 6) | (c & 0x3F);
      pos++;
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      throw new JsonException(String.format("invalid UTF-8 sequence (code point U+%X)", cp), start - base);
    }
    sb.appendCodePoint(cp);
  }

  // ------------------------------------------------------------------------------------------
  // writer

  /**
   * Compact JSON ({@code ,} and {@code :} without spaces, as serde_json writes safetensors headers).
   * Accepts Map (String keys, iteration order kept), Iterable, long[] and int[] (as arrays),
   * CharSequence, finite Number, Boolean and null.
   */
  public static String write(Object v) {
    StringBuilder sb = new StringBuilder();
    write(sb, v, -1, 0);
    return sb.toString();
  }

  /** Indented JSON (2 spaces, {@code ": "}), the shape of transformers' {@code config.json}. */
  public static String writePretty(Object v) {
    StringBuilder sb = new StringBuilder();
    write(sb, v, 2, 0);
    return sb.append('\n').toString();
  }

  private static void newline(StringBuilder sb, int indent, int level) {
    if (indent >= 0) {
      sb.append('\n');
      for (int i = 0; i < indent * level; i++) {
        sb.append(' ');
      }
    }
  }

  private static void write(StringBuilder sb, Object v, int indent, int level) {
    if (v == null) {
      sb.append("null");
    } else if (v instanceof CharSequence) {
      quote(sb, v.toString());
    } else if (v instanceof Boolean) {
      sb.append(v);
    } else if (v instanceof Double || v instanceof Float) {
      double d = ((Number) v).doubleValue();
      if (!Double.isFinite(d)) {
        throw new IllegalArgumentException("JSON cannot represent the number " + d);
      }
      sb.append(v instanceof Float ? Float.toString((Float) v) : Double.toString(d));
    } else if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte
        || v instanceof BigInteger) {
      sb.append(v);
    } else if (v instanceof Map) {
      Map<?, ?> m = (Map<?, ?>) v;
      if (m.isEmpty()) {
        sb.append("{}");
        return;
      }
      sb.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : m.entrySet()) {
        if (!(e.getKey() instanceof String)) {
          throw new IllegalArgumentException("JSON object keys must be strings, got " + e.getKey());
        }
        if (!first) {
          sb.append(',');
        }
        first = false;
        newline(sb, indent, level + 1);
        quote(sb, (String) e.getKey());
        sb.append(indent >= 0 ? ": " : ":");
        write(sb, e.getValue(), indent, level + 1);
      }
      newline(sb, indent, level);
      sb.append('}');
    } else if (v instanceof long[] || v instanceof int[] || v instanceof Iterable) {
      List<Object> items = new ArrayList<>();
      if (v instanceof long[]) {
        for (long x : (long[]) v) {
          items.add(x);
        }
      } else if (v instanceof int[]) {
        for (int x : (int[]) v) {
          items.add(x);
        }
      } else {
        for (Object x : (Iterable<?>) v) {
          items.add(x);
        }
      }
      if (items.isEmpty()) {
        sb.append("[]");
        return;
      }
      sb.append('[');
      for (int i = 0; i < items.size(); i++) {
        if (i > 0) {
          sb.append(indent >= 0 ? "," : ",");
        }
        newline(sb, indent, level + 1);
        write(sb, items.get(i), indent, level + 1);
      }
      newline(sb, indent, level);
      sb.append(']');
    } else {
      throw new IllegalArgumentException("cannot write a " + v.getClass().getName() + " as JSON");
    }
  }

  private static void quote(StringBuilder sb, String s) {
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"':
          sb.append("\\\"");
          break;
        case '\\':
          sb.append("\\\\");
          break;
        case '\n':
          sb.append("\\n");
          break;
        case '\r':
          sb.append("\\r");
          break;
        case '\t':
          sb.append("\\t");
          break;
        case '\b':
          sb.append("\\b");
          break;
        case '\f':
          sb.append("\\f");
          break;
        default:
          if (c < 0x20) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
      }
    }
    sb.append('"');
  }
}
