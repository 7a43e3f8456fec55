package dev.foldstream.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.HexFormat;

/** The envelopes of docs/wire-formats.md: parsing, the checks a foldstream reader makes, event ids, timestamps. */
final class Envelopes {
  static final ObjectMapper JSON = new ObjectMapper();

  private static final String[] EVENT_STRINGS = {"eventId", "eventType", "aggregateType", "aggregateId", "timestamp"};
  private static final String[] EVENT_VERSIONS = {"eventVersion", "aggregateVersion"};
  private static final String[] EVENT_OPTIONAL = {"userId", "correlationId", "causationId", "tenantId"};
  private static final String[] COMMAND_STRINGS = {"commandId", "commandType", "aggregateId"};
  private static final String[] COMMAND_OPTIONAL = {"userId", "timestamp", "correlationId", "tenantId"};

  /** foldstream's namespace for version-5 event ids (src/processors/aggregate/event-id.ts). */
  private static final byte[] NAMESPACE = HexFormat.of().parseHex("3b8f3c8e5d2a4f0e9c41a7d6b2e9f015");
  private static final DateTimeFormatter ISO = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

  private Envelopes() {}

  /** The value as a JSON object, or null when it is not one (foldstream dead-letters such records). */
  static ObjectNode parse(String value) {
    if (value == null) return null;
    try {
      JsonNode n = JSON.readTree(value);
      return n instanceof ObjectNode o ? o : null;
    } catch (Exception e) {
      return null;
    }
  }

  static String write(JsonNode n) {
    try {
      return JSON.writeValueAsString(n);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  static boolean isEvent(ObjectNode e) {
    for (String f : EVENT_STRINGS) if (!nonEmptyString(e.get(f))) return false;
    for (String f : EVENT_VERSIONS) if (!integerAtLeast(e.get(f), 1)) return false;
    for (String f : EVENT_OPTIONAL) if (!optionalString(e.get(f))) return false;
    return e.get("data") instanceof ObjectNode;
  }

  static boolean isCommand(ObjectNode c) {
    for (String f : COMMAND_STRINGS) if (!nonEmptyString(c.get(f))) return false;
    for (String f : COMMAND_OPTIONAL) if (!optionalString(c.get(f))) return false;
    JsonNode v = c.get("expectedVersion");
    if (v != null && !v.isNull() && !integerAtLeast(v, 0)) return false;
    return c.get("data") instanceof ObjectNode;
  }

  /** The record key an aggregate's records carry: `tenantId:aggregateId` when there is a tenant. */
  static String aggregateKey(ObjectNode envelope) {
    String tenant = text(envelope, "tenantId");
    String id = envelope.get("aggregateId").asText();
    return tenant == null || tenant.isEmpty() ? id : tenant + ":" + id;
  }

  /** A string field, or null when absent or null. */
  static String text(ObjectNode n, String field) {
    JsonNode v = n.get(field);
    return v == null || v.isNull() ? null : v.asText();
  }

  /** JavaScript's JSON.stringify of a field, as foldstream's messages quote values ("undefined" when absent). */
  static String quote(JsonNode v) {
    return v == null || v.isMissingNode() ? "undefined" : write(v);
  }

  /** RFC 4122 version-5 UUID of the event's place in its stream: the same id foldstream gives the same event. */
  static String eventId(String eventsTopic, String aggregateType, String key, long aggregateVersion) {
    MessageDigest sha1;
    try {
      sha1 = MessageDigest.getInstance("SHA-1");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    sha1.update(NAMESPACE);
    sha1.update((eventsTopic + '\u0000' + aggregateType + '\u0000' + key + '\u0000' + aggregateVersion).getBytes(StandardCharsets.UTF_8));
    byte[] b = sha1.digest();
    b[6] = (byte) ((b[6] & 0x0f) | 0x50);
    b[8] = (byte) ((b[8] & 0x3f) | 0x80);
    String h = HexFormat.of().formatHex(b, 0, 16);
    return h.substring(0, 8) + "-" + h.substring(8, 12) + "-" + h.substring(12, 16) + "-" + h.substring(16, 20) + "-" + h.substring(20);
  }

  /** JavaScript's Date.prototype.toISOString (always milliseconds). */
  static String isoTime(long epochMillis) {
    return ISO.format(Instant.ofEpochMilli(epochMillis));
  }

  private static boolean nonEmptyString(JsonNode v) {
    return v != null && v.isTextual() && !v.asText().isEmpty();
  }

  private static boolean optionalString(JsonNode v) {
    return v == null || v.isNull() || v.isTextual();
  }

  private static boolean integerAtLeast(JsonNode v, long min) {
    return v != null && v.isIntegralNumber() && v.canConvertToLong() && v.asLong() >= min && v.asLong() <= 9007199254740991L;
  }
}
