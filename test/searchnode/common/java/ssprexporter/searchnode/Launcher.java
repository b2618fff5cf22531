package ssprexporter.searchnode;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.appender.ConsoleAppender;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;

/**
 * The engine-independent part of a test node: command line, settings shared by
 * Elasticsearch and OpenSearch, logging, readiness and shutdown.
 *
 * <p>Usage: {@code MainClass HOME [-E key=value | -Ekey=value]...}. HOME is
 * the node's home directory (data under HOME/data); settings given with -E win
 * over the defaults. Once the cluster is yellow or green the one line
 * {@code listening http://127.0.0.1:PORT} is printed on stdout; everything else
 * the node says goes to stderr. The node stops on SIGTERM and when its stdin
 * reaches end of file.
 */
public final class Launcher {

    /** One engine's way to run a node. */
    public interface Engine {
        /** Builds and starts a node with these settings; returns its bound HTTP port. */
        int start(Map<String, String> settings) throws Exception;

        /** Closes the node and waits for it to finish. */
        void stop() throws Exception;
    }

    private static final Duration READY_TIMEOUT = Duration.ofMinutes(3);

    private Launcher() {}

    /** Parses args, starts the node, prints the ready line and serves until stopped. */
    public static void run(String[] args, Engine engine) {
        Map<String, String> settings;
        try {
            settings = settings(args);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.err.println("usage: HOME [-E key=value]...");
            System.exit(2);
            return;
        }
        configureLogging();
        // Closing the node (flush, release the data directory lock) on SIGTERM
        // is what the engines' own launchers do too.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                engine.stop();
            } catch (Exception e) {
                e.printStackTrace();
            }
        }, "test-node-shutdown"));
        try {
            int port = engine.start(settings);
            waitForHealth(port);
            System.out.println("listening http://127.0.0.1:" + port);
            System.out.flush();
        } catch (Throwable t) {
            t.printStackTrace();
            // halt, not exit: a half-built node can hang in the shutdown hook.
            Runtime.getRuntime().halt(1);
        }
        awaitStdinEnd();
    }

    /** Defaults for a small, private single node, then the -E overrides. */
    static Map<String, String> settings(String[] args) {
        if (args.length == 0 || args[0].startsWith("-")) {
            throw new IllegalArgumentException("missing HOME directory");
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Map<String, String> s = new LinkedHashMap<>();
        s.put("node.name", "sspr-test");
        s.put("cluster.name", "sspr-test");
        s.put("path.home", home.toString());
        s.put("path.data", home.resolve("data").toString());
        s.put("path.logs", home.resolve("logs").toString());
        // Loopback only: the node must not be reachable from elsewhere, and
        // a loopback-bound node skips the production bootstrap checks.
        s.put("network.host", "127.0.0.1");
        // Port 0: the OS picks free ports; the HTTP one is printed when ready.
        // A restart passes the first port back with -E http.port=PORT.
        s.put("http.port", "0");
        s.put("transport.port", "0");
        s.put("discovery.type", "single-node");
        // Test machines often have small or nearly full disks: without this
        // the node stops allocating shards at 85% and makes indices
        // read-only at 95% of the disk, which has nothing to do with a test.
        s.put("cluster.routing.allocation.disk.threshold_enabled", "false");
        for (int i = 1; i < args.length; i++) {
            String kv;
            if (args[i].equals("-E") && i + 1 < args.length) {
                kv = args[++i];
            } else if (args[i].startsWith("-E") && args[i].length() > 2) {
                kv = args[i].substring(2);
            } else {
                throw new IllegalArgumentException("unexpected argument " + args[i]);
            }
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("setting " + kv + " is not key=value");
            }
            s.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return s;
    }

    /**
     * Logs at INFO to stderr with a plain pattern. Set up in code because the
     * Elasticsearch test framework jar carries a log4j2-test.properties that
     * log4j would otherwise load, whose pattern needs the randomized test
     * runner.
     */
    private static void configureLogging() {
        // The node closes itself in our shutdown hook; log4j's own hook would
        // stop logging before the node has said why it is stopping.
        System.setProperty("log4j.shutdownHookEnabled", "false");
        System.setProperty("log4j2.shutdownHookEnabled", "false");
        ConfigurationBuilder<BuiltConfiguration> b = ConfigurationBuilderFactory.newConfigurationBuilder();
        b.setStatusLevel(Level.ERROR);
        b.add(b.newAppender("stderr", "Console")
            .addAttribute("target", ConsoleAppender.Target.SYSTEM_ERR)
            .add(b.newLayout("PatternLayout").addAttribute("pattern", "[%d{ISO8601}][%-5p][%c{1.}] %m%n")));
        b.add(b.newRootLogger(Level.INFO).add(b.newAppenderRef("stderr")));
        Configurator.initialize(b.build());
    }

    /**
     * Waits until the cluster is at least yellow, asked over HTTP like any
     * client would, so that "listening" means the node takes requests.
     */
    private static void waitForHealth(int port) throws Exception {
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        URI uri = URI.create("http://127.0.0.1:" + port + "/_cluster/health?wait_for_status=yellow&timeout=1s");
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        String last = "no answer";
        while (System.nanoTime() < deadline) {
            try {
                HttpResponse<String> res = client.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).build(),
                    HttpResponse.BodyHandlers.ofString());
                if (res.statusCode() == 200 && res.body().matches("(?s).*\"status\"\\s*:\\s*\"(green|yellow)\".*")) {
                    return;
                }
                last = res.statusCode() + " " + res.body();
            } catch (IOException e) {
                last = e.toString();
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("cluster not yellow after " + READY_TIMEOUT + ": " + last);
    }

    /**
     * Blocks until stdin closes, then stops the node. The parent keeps a pipe
     * open on our stdin; if it dies, even by SIGKILL, the pipe closes and the
     * node goes with it instead of running on as an orphan. This also keeps
     * the JVM alive: the engines' own threads are all daemon threads.
     */
    private static void awaitStdinEnd() {
        try (InputStream in = System.in) {
            byte[] buf = new byte[256];
            while (in.read(buf) >= 0) {
                // Input is ignored; only its end matters.
            }
        } catch (IOException e) {
            // A broken stdin means the same as its end.
        }
        System.exit(0);
    }
}
