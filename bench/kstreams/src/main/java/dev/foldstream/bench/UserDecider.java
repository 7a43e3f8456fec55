package dev.foldstream.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.regex.Pattern;

/** The User aggregate of examples/users/user.ts, rule for rule and message for message. */
final class UserDecider {
  static final List<String> STATUSES = List.of("ACTIVE", "SILVER", "GOLD", "VIP");
  private static final Pattern EMAIL = Pattern.compile("^[^@\\s]+@[^@\\s]+$");

  /** A decision the aggregate rejects: the reply's `reason` and `code`. */
  static final class DomainError extends Exception {
    final String code;

    DomainError(String reason, String code) {
      super(reason, null, false, false);
      this.code = code;
    }
  }

  /** An event as decide returns it: type, eventVersion, data. */
  record Draft(String type, int eventVersion, ObjectNode data) {}

  private UserDecider() {}

  static ObjectNode initialState() {
    return Envelopes.JSON.createObjectNode().put("exists", false);
  }

  static List<Draft> decide(ObjectNode command, ObjectNode state) throws DomainError {
    String type = command.get("commandType").asText();
    String id = command.get("aggregateId").asText();
    JsonNode data = command.get("data");
    switch (type) {
      case "CreateUser" -> {
        if (state.get("exists").asBoolean()) throw new DomainError("user " + id + " already exists", "USER_EXISTS");
        JsonNode name = data.get("fullName");
        String fullName = name != null && name.isTextual() ? name.asText() : "";
        String email = email(data);
        return List.of(new Draft("UserCreated", 2, obj().put("email", email).put("fullName", fullName).put("status", "ACTIVE")));
      }
      case "UpdateEmail" -> {
        existing(state, id);
        String newEmail = email(data);
        String oldEmail = state.get("email").asText();
        if (newEmail.equals(oldEmail)) return List.of(); // the same address: accepted, nothing happened
        return List.of(new Draft("EmailChanged", 1, obj().put("oldEmail", oldEmail).put("newEmail", newEmail)));
      }
      case "UpgradeStatus" -> {
        existing(state, id);
        JsonNode s = data.get("status");
        if (s == null || !s.isTextual() || !STATUSES.contains(s.asText())) {
          throw new DomainError("unknown status " + Envelopes.quote(s) + "; one of " + String.join(", ", STATUSES), "STATUS_UNKNOWN");
        }
        String current = state.get("status").asText();
        if (STATUSES.indexOf(s.asText()) <= STATUSES.indexOf(current)) {
          throw new DomainError("cannot change status from " + current + " to " + s.asText() + ": only upgrades are allowed", "NOT_AN_UPGRADE");
        }
        return List.of(new Draft("StatusUpgraded", 1, obj().put("oldStatus", current).put("status", s.asText())));
      }
      default -> throw new DomainError("unknown command type " + Envelopes.quote(command.get("commandType")), "COMMAND_UNKNOWN");
    }
  }

  static ObjectNode evolve(ObjectNode state, ObjectNode event) {
    JsonNode d = event.get("data");
    switch (event.get("eventType").asText()) {
      case "UserCreated" -> {
        JsonNode status = d.get("status");
        return obj().put("exists", true).put("email", text(d.get("email"))).put("fullName", d.has("fullName") && !d.get("fullName").isNull() ? text(d.get("fullName")) : "")
            .put("status", status != null && STATUSES.contains(status.asText()) ? status.asText() : "ACTIVE");
      }
      case "EmailChanged" -> {
        return state.get("exists").asBoolean() ? state.deepCopy().put("email", text(d.get("newEmail"))) : state;
      }
      case "StatusUpgraded" -> {
        JsonNode status = d.get("status");
        return state.get("exists").asBoolean() && status != null && STATUSES.contains(status.asText()) ? state.deepCopy().put("status", status.asText()) : state;
      }
      default -> {
        return state;
      }
    }
  }

  private static String email(JsonNode data) throws DomainError {
    JsonNode e = data.get("email");
    if (e == null || !e.isTextual() || !EMAIL.matcher(e.asText()).matches()) throw new DomainError(Envelopes.quote(e) + " is not an email address", "INVALID_EMAIL");
    return e.asText();
  }

  private static void existing(ObjectNode state, String id) throws DomainError {
    if (!state.get("exists").asBoolean()) throw new DomainError("user " + id + " does not exist", "USER_NOT_FOUND");
  }

  /** JavaScript's String(value). */
  private static String text(JsonNode v) {
    return v == null ? "undefined" : v.isTextual() ? v.asText() : Envelopes.write(v);
  }

  private static ObjectNode obj() {
    return Envelopes.JSON.createObjectNode();
  }
}
