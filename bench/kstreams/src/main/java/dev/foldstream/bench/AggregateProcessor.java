package dev.foldstream.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The `users` aggregate of topology.yaml, as foldstream runs it (docs/aggregates.md), one command at a time:
 * 1. a commandId this aggregate has seen gets its first reply again, the same bytes (`commands` store, keyed by
 *    aggregate and commandId), and no events; another command (type or data) under that id is rejected as
 *    COMMAND_ID_REUSED, and nothing of it is kept;
 * 2. an expectedVersion that differs from the stored version gets a `conflict` reply;
 * 3. decide: a domain error is a `rejected` reply;
 * 4. the events are stamped (derived ids, versions, time, causation), evolved into the state (`state` store), kept
 *    in `history` and sent with an `accepted` reply.
 * Kafka Streams' exactly_once_v2 commits the outputs, the stores' changelogs and the input offset together.
 * Commands foldstream would dead-letter (not an envelope, key ≠ aggregateId) are dropped here: the benchmark sends none.
 */
final class AggregateProcessor implements Processor<String, String, String, String> {
  static final String STATE = "state";
  static final String COMMANDS = "commands";
  static final String HISTORY = "history";
  static final String EVENTS_SINK = "events-sink";
  static final String REPLIES_SINK = "replies-sink";
  /** writes maps with their keys sorted: what makes a command the same command again, whatever its key order */
  private static final ObjectMapper CANONICAL = new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);

  private final String eventsTopic;
  private ProcessorContext<String, String> context;
  private KeyValueStore<String, String> states;
  private KeyValueStore<String, String> commands;
  private KeyValueStore<String, String> history;

  AggregateProcessor(String eventsTopic) {
    this.eventsTopic = eventsTopic;
  }

  @Override
  public void init(ProcessorContext<String, String> context) {
    this.context = context;
    this.states = context.getStateStore(STATE);
    this.commands = context.getStateStore(COMMANDS);
    this.history = context.getStateStore(HISTORY);
  }

  @Override
  public void process(Record<String, String> record) {
    ObjectNode command = Envelopes.parse(record.value());
    if (command == null || !Envelopes.isCommand(command) || record.key() == null || !record.key().equals(Envelopes.aggregateKey(command))) return;
    String key = record.key();
    String commandId = command.get("commandId").asText();
    String remembered = json(List.of(key, commandId));
    String sameness = json(List.of(command.get("commandType").asText(), CANONICAL.convertValue(command.get("data"), Object.class)));

    ObjectNode stored = Envelopes.parse(states.get(key));
    long version = stored == null ? 0 : stored.get("version").asLong();
    ObjectNode earlier = Envelopes.parse(commands.get(remembered));
    if (earlier != null) {
      if (earlier.get("command").asText().equals(sameness)) {
        reply(record, earlier.get("reply").asText());
        return;
      }
      ObjectNode first = Envelopes.parse(earlier.get("reply").asText());
      String reason = "commandId " + json(commandId) + " was already used for another command to this aggregate (a different commandType or data), answered "
          + first.get("status").asText() + " at version " + first.get("aggregateVersion").asLong() + ": send a new command with a new commandId";
      reply(record, reply(command, "rejected", version, List.of(), reason, "COMMAND_ID_REUSED"));
      return;
    }

    JsonNode expected = command.get("expectedVersion");
    if (expected != null && !expected.isNull() && expected.asLong() != version) {
      String reason = "expectedVersion " + expected.asLong() + " differs from the aggregate's version " + version;
      settle(record, remembered, sameness, reply(command, "conflict", version, List.of(), reason, "CONCURRENCY_CONFLICT"));
      return;
    }

    ObjectNode state = stored == null ? UserDecider.initialState() : (ObjectNode) stored.get("state");
    List<UserDecider.Draft> drafts;
    try {
      drafts = UserDecider.decide(command, state);
    } catch (UserDecider.DomainError e) {
      settle(record, remembered, sameness, reply(command, "rejected", version, List.of(), e.getMessage(), e.code));
      return;
    }

    String timestamp = Envelopes.text(command, "timestamp");
    if (timestamp == null) timestamp = Envelopes.isoTime(record.timestamp());
    List<String> eventIds = new ArrayList<>();
    for (int i = 0; i < drafts.size(); i++) {
      ObjectNode event = stamp(command, key, version + i + 1, timestamp, drafts.get(i));
      state = UserDecider.evolve(state, event);
      String json = Envelopes.write(event);
      history.put(key + ":" + String.format("%010d", version + i + 1), json);
      context.forward(new Record<>(key, json, record.timestamp(), new RecordHeaders()), EVENTS_SINK);
      eventIds.add(event.get("eventId").asText());
    }
    if (!drafts.isEmpty()) {
      ObjectNode entry = Envelopes.JSON.createObjectNode();
      entry.put("version", version + drafts.size());
      entry.set("state", state);
      states.put(key, Envelopes.write(entry));
    }
    settle(record, remembered, sameness, reply(command, "accepted", version + drafts.size(), eventIds, null, null));
  }

  /** The reply is kept with what the command was, so that a retry of the command gets it again. */
  private void settle(Record<String, String> record, String remembered, String sameness, String reply) {
    ObjectNode entry = Envelopes.JSON.createObjectNode();
    entry.put("reply", reply);
    entry.put("command", sameness);
    commands.put(remembered, Envelopes.write(entry));
    reply(record, reply);
  }

  private static String json(Object value) {
    try {
      return CANONICAL.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private void reply(Record<String, String> record, String reply) {
    context.forward(new Record<>(record.key(), reply, record.timestamp(), new RecordHeaders()), REPLIES_SINK);
  }

  private static String reply(ObjectNode command, String status, long version, List<String> eventIds, String reason, String code) {
    ObjectNode r = Envelopes.JSON.createObjectNode();
    r.set("commandId", command.get("commandId"));
    r.put("status", status);
    if (reason != null) r.put("reason", reason).put("code", code);
    r.set("aggregateId", command.get("aggregateId"));
    r.put("aggregateVersion", version);
    ArrayNode ids = r.putArray("eventIds");
    eventIds.forEach(ids::add);
    return Envelopes.write(r);
  }

  /** The envelope of docs/wire-formats.md, fields in foldstream's order. */
  private ObjectNode stamp(ObjectNode command, String key, long aggregateVersion, String timestamp, UserDecider.Draft d) {
    ObjectNode e = Envelopes.JSON.createObjectNode();
    e.put("eventId", Envelopes.eventId(eventsTopic, "User", key, aggregateVersion));
    e.put("eventType", d.type());
    e.put("eventVersion", d.eventVersion());
    e.put("aggregateType", "User");
    e.set("aggregateId", command.get("aggregateId"));
    e.put("aggregateVersion", aggregateVersion);
    e.put("timestamp", timestamp);
    String correlationId = Envelopes.text(command, "correlationId");
    e.put("correlationId", correlationId != null ? correlationId : command.get("commandId").asText());
    e.set("causationId", command.get("commandId"));
    e.set("data", d.data());
    String userId = Envelopes.text(command, "userId");
    if (userId != null && !userId.isEmpty()) e.put("userId", userId);
    return e;
  }
}
