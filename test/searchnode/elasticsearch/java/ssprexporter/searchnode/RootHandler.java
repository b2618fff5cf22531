package ssprexporter.searchnode;

import java.util.List;
import java.util.function.Supplier;

import org.apache.lucene.util.Version;
import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.bytes.BytesArray;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

/**
 * GET / (the node's name, cluster and version, as clients expect for their
 * product and version checks) and HEAD / (a ping). The same source compiles
 * against Elasticsearch 8.19 and 9.5; only the plugin registering it differs.
 */
final class RootHandler extends BaseRestHandler {

    private final Supplier<ClusterService> cluster;

    RootHandler(Supplier<ClusterService> cluster) {
        this.cluster = cluster;
    }

    @Override
    public String getName() {
        return "sspr_test_root";
    }

    @Override
    public List<Route> routes() {
        return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
    }

    @Override
    protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
        if (request.method() == RestRequest.Method.HEAD) {
            return channel -> channel.sendResponse(new RestResponse(RestStatus.OK, RestResponse.TEXT_CONTENT_TYPE, BytesArray.EMPTY));
        }
        ClusterService cs = cluster.get();
        Build build = Build.current();
        return channel -> {
            XContentBuilder b = channel.newBuilder();
            b.startObject();
            b.field("name", cs.getNodeName());
            b.field("cluster_name", cs.getClusterName().value());
            b.field("cluster_uuid", cs.state().metadata().clusterUUID());
            b.startObject("version");
            b.field("number", build.qualifiedVersion());
            b.field("build_flavor", build.flavor());
            b.field("build_type", build.type().displayName());
            b.field("build_hash", build.hash());
            b.field("build_date", build.date());
            b.field("build_snapshot", build.isSnapshot());
            b.field("lucene_version", Version.LATEST.toString());
            b.field("minimum_wire_compatibility_version", build.minWireCompatVersion());
            b.field("minimum_index_compatibility_version", build.minIndexCompatVersion());
            b.endObject();
            b.field("tagline", "You Know, for Search");
            b.endObject();
            channel.sendResponse(new RestResponse(RestStatus.OK, b));
        };
    }
}
