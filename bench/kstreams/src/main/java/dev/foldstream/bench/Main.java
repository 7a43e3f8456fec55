package dev.foldstream.bench;

import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.Stores;

/**
 * The Kafka Streams reference app of foldstream's benchmark (bench/README.md): the users example's two processors,
 * written with the Processor API over RocksDB stores, reading and writing the wire formats of docs/wire-formats.md.
 *
 * <pre>java -cp target/classes:target/lib/* dev.foldstream.bench.Main projection|aggregate key=value...</pre>
 *
 * Keys: bootstrap, app (application.id), stateDir, input, output (projection: the view topic), events and replies
 * (aggregate), commitIntervalMs (100), sessionTimeoutMs (10000), threads (1), instanceId (none: the consumer's
 * group.instance.id, static membership, for the failover phase). Lifecycle events are printed to stdout as JSON lines
 * ({"event": "state" | "restore.start" | "restore.end" | "tasks", "t": epoch ms, ...}) for bench/run.ts; "tasks" lists
 * the input partitions of the active tasks each time the instance is RUNNING.
 */
public final class Main {
  public static void main(String[] args) throws InterruptedException {
    if (args.length < 1 || !(args[0].equals("projection") || args[0].equals("aggregate"))) {
      System.err.println("usage: Main projection|aggregate key=value...");
      System.exit(2);
    }
    Map<String, String> o = new java.util.HashMap<>();
    for (int i = 1; i < args.length; i++) {
      int eq = args[i].indexOf('=');
      if (eq < 1) throw new IllegalArgumentException("expected key=value, got " + args[i]);
      o.put(args[i].substring(0, eq), args[i].substring(eq + 1));
    }
    Topology topology = args[0].equals("projection") ? projection(o) : aggregate(o);

    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, required(o, "app"));
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, o.getOrDefault("bootstrap", "127.0.0.1:9092"));
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, o.getOrDefault("commitIntervalMs", "100"));
    p.put(StreamsConfig.STATE_DIR_CONFIG, required(o, "stateDir"));
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, o.getOrDefault("threads", "1"));
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), o.getOrDefault("sessionTimeoutMs", "10000"));
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    if (o.containsKey("instanceId")) p.put(StreamsConfig.consumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG), o.get("instanceId"));

    KafkaStreams streams = new KafkaStreams(topology, p);
    CountDownLatch done = new CountDownLatch(1);
    streams.setStateListener((to, from) -> {
      print("{\"event\":\"state\",\"from\":\"" + from + "\",\"to\":\"" + to + "\"}");
      if (to == KafkaStreams.State.RUNNING) printTasks(streams);
      if (to == KafkaStreams.State.NOT_RUNNING || to == KafkaStreams.State.ERROR) done.countDown();
    });
    streams.setGlobalStateRestoreListener(new RestoreLog());
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(30));
      done.countDown();
    }));
    streams.start();
    done.await();
  }

  /** Events in, the user view out: `user-view` of topology.yaml (docs/projections.md). */
  static Topology projection(Map<String, String> o) {
    Topology t = new Topology();
    t.addSource("events", required(o, "input"));
    t.addProcessor("user-view", ProjectionProcessor::new, "events");
    t.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(ProjectionProcessor.VIEW), Serdes.String(), Serdes.String())
        .withCachingEnabled(), "user-view");
    t.addSink(ProjectionProcessor.SINK, required(o, "output"), "user-view");
    return t;
  }

  /** Commands in, events and replies out: the `users` aggregate of topology.yaml (docs/aggregates.md). */
  static Topology aggregate(Map<String, String> o) {
    String events = required(o, "events");
    Topology t = new Topology();
    t.addSource("commands", required(o, "input"));
    t.addProcessor("users", () -> new AggregateProcessor(events), "commands");
    for (String store : new String[] {AggregateProcessor.STATE, AggregateProcessor.COMMANDS, AggregateProcessor.HISTORY}) {
      t.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(store), Serdes.String(), Serdes.String()).withCachingEnabled(), "users");
    }
    t.addSink(AggregateProcessor.EVENTS_SINK, events, "users");
    t.addSink(AggregateProcessor.REPLIES_SINK, required(o, "replies"), "users");
    return t;
  }

  private static String required(Map<String, String> o, String key) {
    String v = o.get(key);
    if (v == null || v.isEmpty()) throw new IllegalArgumentException("missing " + key + "=...");
    return v;
  }

  /** The input partitions of this instance's active tasks. */
  static void printTasks(KafkaStreams streams) {
    java.util.TreeSet<Integer> partitions = new java.util.TreeSet<>();
    for (org.apache.kafka.streams.ThreadMetadata thread : streams.metadataForLocalThreads()) {
      for (org.apache.kafka.streams.TaskMetadata task : thread.activeTasks()) {
        for (TopicPartition tp : task.topicPartitions()) partitions.add(tp.partition());
      }
    }
    StringBuilder list = new StringBuilder();
    for (Integer p : partitions) list.append(list.length() == 0 ? "" : ",").append(p);
    print("{\"event\":\"tasks\",\"partitions\":[" + list + "]}");
  }

  static synchronized void print(String json) {
    // every line carries the wall-clock time it happened, for bench/run.ts
    System.out.println(json.substring(0, json.length() - 1) + ",\"t\":" + System.currentTimeMillis() + "}");
    System.out.flush();
  }

  /** Restores as JSON lines: bench/run.ts computes restore records/s from them. */
  static final class RestoreLog implements StateRestoreListener {
    @Override
    public void onRestoreStart(TopicPartition tp, String store, long startingOffset, long endingOffset) {
      print("{\"event\":\"restore.start\",\"store\":\"" + store + "\",\"partition\":" + tp.partition() + ",\"from\":" + startingOffset + ",\"to\":" + endingOffset + "}");
    }

    @Override
    public void onBatchRestored(TopicPartition tp, String store, long batchEndOffset, long numRestored) {}

    @Override
    public void onRestoreEnd(TopicPartition tp, String store, long totalRestored) {
      print("{\"event\":\"restore.end\",\"store\":\"" + store + "\",\"partition\":" + tp.partition() + ",\"records\":" + totalRestored + "}");
    }
  }
}
