package org.elasticsearch.node;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.plugins.MockPluginsService;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;
import org.elasticsearch.transport.netty4.Netty4Plugin;

import ssprexporter.searchnode.Launcher;
import ssprexporter.searchnode.RootPlugin;

/**
 * Runs a real single Elasticsearch node (8.19 or 9.5) from the jars published
 * on Maven Central, for tests.
 *
 * <p>The class lives in Elasticsearch's own package on purpose: since 8.x a
 * Node no longer takes plugins from the classpath, and the one way left is
 * package-private, {@code NodeConstruction.prepareConstruction} with a
 * {@code NodeServiceProvider} whose plugin service is the test framework's
 * MockPluginsService. Every other service is the production one. The test
 * framework's MockNode is not used: it refuses to run as root, and its
 * randomized-testing dependencies break node start outside a test runner.
 */
public final class ElasticsearchNodeMain implements Launcher.Engine {

    private volatile Node node;

    public static void main(String[] args) {
        Launcher.run(args, new ElasticsearchNodeMain());
    }

    @Override
    public int start(Map<String, String> settings) throws Exception {
        // Elasticsearch's launcher passes the home as a system property too.
        // 9.x looks for its native libraries under it unless
        // es.nativelibs.path says where they are, and without either fails
        // with a NullPointerException that turns native access off.
        System.setProperty("es.path.home", settings.get("path.home"));
        // Elasticsearch logs through its own facade; this binds it to log4j.
        LogConfigurator.configureESLogging();
        Settings.Builder b = Settings.builder();
        settings.forEach(b::put);
        Environment env = new Environment(b.build(), null);
        Node n = new Node(NodeConstruction.prepareConstruction(env, null, new ClasspathPlugins(), true));
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
        n.prepareForClose();
        n.close();
        n.awaitClose(30, TimeUnit.SECONDS);
    }

    /**
     * The production services, with the plugins taken from the classpath:
     * Netty4 for HTTP and transport, and the handler of GET / and HEAD /
     * (the rest-root module is not published). Security, ML and the other
     * x-pack features are off because they are not loaded at all.
     */
    private static final class ClasspathPlugins extends NodeServiceProvider {
        @Override
        PluginsService newPluginService(Environment env, PluginsLoader loader) {
            return new MockPluginsService(env.settings(), env, List.of(Netty4Plugin.class, RootPlugin.class));
        }
    }
}
