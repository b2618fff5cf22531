package ssprexporter.searchnode;

import java.util.Collection;
import java.util.List;

import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.RestHandler;

/**
 * What the root plugins of Elasticsearch 8.x and 9.x share: the cluster
 * service GET / reads, captured when the node builds its components. Each
 * major version's RootPlugin only adds getRestHandlers, whose signature
 * differs between them.
 */
abstract class RootPluginBase extends Plugin implements ActionPlugin {

    private volatile ClusterService cluster;

    @Override
    public Collection<?> createComponents(PluginServices services) {
        cluster = services.clusterService();
        return List.of();
    }

    /** The handlers of GET / and HEAD /, in place of the unpublished rest-root module. */
    final Collection<RestHandler> rootHandlers() {
        return List.of(new RootHandler(() -> cluster));
    }
}
