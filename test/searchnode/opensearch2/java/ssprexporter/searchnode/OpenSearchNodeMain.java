package ssprexporter.searchnode;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

/**
 * Runs a real single OpenSearch 2.19 node from the jars published on Maven
 * Central, for tests. OpenSearch's Node still takes classpath plugins through
 * a protected constructor, and serves GET / itself.
 */
public final class OpenSearchNodeMain implements Launcher.Engine {

    private volatile Node node;

    public static void main(String[] args) {
        Launcher.run(args, new OpenSearchNodeMain());
    }

    @Override
    public int start(Map<String, String> settings) throws Exception {
        Settings.Builder b = Settings.builder();
        settings.forEach(b::put);
        Node n = new TestNode(new Environment(b.build(), null));
        node = n;
        n.start();
        return n.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress().getPort();
    }

    @Override
    public void stop() throws Exception {
        Node n = node;
        if (n == null) {
            return;
        }
        n.close();
        n.awaitClose(30, TimeUnit.SECONDS);
    }

    /**
     * A node with the modules a distribution would load that matter to the
     * exporter: Netty4 for HTTP and transport, the common analyzers, and the
     * extra field types (scaled_float, match_only_text, ...). Security and
     * every other plugin are off because they are not loaded at all.
     */
    private static final class TestNode extends Node {
        TestNode(Environment env) {
            super(env, List.of(Netty4Plugin.class, CommonAnalysisPlugin.class, MapperExtrasPlugin.class), true);
        }
    }
}
