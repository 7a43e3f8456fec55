package dev.foldstream.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The `user-view` projection of topology.yaml, as foldstream runs it (docs/projections.md): per key, the view and the
 * last applied aggregateVersion in the `view` store; an event at or below that version is skipped, so the view is
 * idempotent by version; every applied event writes the whole view to the output, with header
 * `foldstream.view.version`. The upcaster UserCreated v1 → v2 and maxEventVersion apply first.
 * Records foldstream would dead-letter (not an envelope, key ≠ aggregateId, eventVersion too new) are dropped here:
 * the benchmark sends none.
 */
final class ProjectionProcessor implements Processor<String, String, String, String> {
  static final String VIEW = "view";
  static final String SINK = "user-view-sink";
  static final String VERSION_HEADER = "foldstream.view.version";
  private static final Map<String, Integer> MAX_EVENT_VERSION = Map.of("UserCreated", 2, "EmailChanged", 1, "StatusUpgraded", 1);

  private ProcessorContext<String, String> context;
  private KeyValueStore<String, String> views;

  @Override
  public void init(ProcessorContext<String, String> context) {
    this.context = context;
    this.views = context.getStateStore(VIEW);
  }

  @Override
  public void process(Record<String, String> record) {
    ObjectNode event = Envelopes.parse(record.value());
    if (event == null || !Envelopes.isEvent(event) || record.key() == null || !record.key().equals(Envelopes.aggregateKey(event))) return;
    upcast(event);
    String type = event.get("eventType").asText();
    Integer max = MAX_EVENT_VERSION.get(type);
    if (max != null && event.get("eventVersion").asLong() > max) return;

    long version = event.get("aggregateVersion").asLong();
    ObjectNode stored = Envelopes.parse(views.get(record.key()));
    if (stored != null && version <= stored.get("version").asLong()) return; // already applied
    JsonNode before = stored == null ? null : stored.get("view");
    ObjectNode view = before instanceof ObjectNode v ? v.deepCopy() : Envelopes.JSON.createObjectNode();
    if (!apply(type, event, view)) return; // an event type without a rule: ignored

    ObjectNode entry = Envelopes.JSON.createObjectNode();
    entry.set("view", view);
    entry.put("version", version);
    views.put(record.key(), Envelopes.write(entry));
    RecordHeaders headers = new RecordHeaders();
    headers.add(VERSION_HEADER, Long.toString(version).getBytes(StandardCharsets.UTF_8));
    context.forward(record.withValue(Envelopes.write(view)).withHeaders(headers), SINK);
  }

  /** Version 1 of UserCreated had `name` and no status (topology.yaml's upcaster). */
  private static void upcast(ObjectNode event) {
    if (!event.get("eventType").asText().equals("UserCreated") || event.get("eventVersion").asLong() != 1) return;
    ObjectNode data = (ObjectNode) event.get("data");
    if (data.has("name")) data.set("fullName", data.remove("name"));
    if (!data.has("status")) data.put("status", "ACTIVE");
    event.put("eventVersion", 2);
  }

  /** The `on:` rules of user-view; false for an event type without a rule. */
  private static boolean apply(String type, ObjectNode event, ObjectNode view) {
    JsonNode data = event.get("data");
    switch (type) {
      case "UserCreated" -> {
        set(view, "id", event.get("aggregateId"));
        set(view, "email", data.get("email"));
        set(view, "fullName", data.get("fullName"));
        set(view, "status", data.get("status"));
        set(view, "createdAt", event.get("timestamp"));
        set(view, "updatedAt", event.get("timestamp"));
      }
      case "EmailChanged" -> {
        set(view, "email", data.get("newEmail"));
        set(view, "updatedAt", event.get("timestamp"));
        JsonNode n = view.get("emailChanges");
        view.put("emailChanges", (n == null ? 0 : n.asLong()) + 1);
      }
      case "StatusUpgraded" -> {
        set(view, "status", data.get("status"));
        set(view, "updatedAt", event.get("timestamp"));
        JsonNode status = data.get("status");
        if (status != null) {
          JsonNode list = view.get("statusHistory");
          ArrayNode history = list instanceof ArrayNode a ? a : view.putArray("statusHistory");
          history.add(status);
        }
      }
      default -> {
        return false;
      }
    }
    return true;
  }

  /** `set`: an expression with no value leaves the field as it is. */
  private static void set(ObjectNode view, String field, JsonNode value) {
    if (value != null && !value.isMissingNode()) view.set(field, value);
  }
}
