package bulk

// Mappings returns the explicit mappings of every field ecs.Event emits,
// the free-form maps (additional details) mapped as freeForm: the engine's
// type for objects of any keys. dynamic is false so unknown fields are kept
// in _source but never mapped, and never the cause of a rejection.
func Mappings(freeForm map[string]any) map[string]any {
	kw := func() map[string]any { return map[string]any{"type": "keyword", "ignore_above": 1024} }
	kwText := func() map[string]any {
		m := kw()
		m["fields"] = map[string]any{"text": map[string]any{"type": "match_only_text"}}
		return m
	}
	obj := func(props map[string]any) map[string]any { return map[string]any{"properties": props} }
	userProps := func() map[string]any {
		return map[string]any{"id": kw(), "name": kwText(), "full_name": kwText(), "domain": kw()}
	}
	user := userProps()
	target := userProps()
	target["group"] = obj(map[string]any{"id": kw(), "name": kw()})
	target["roles"] = kw()
	user["target"] = obj(target)
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp": map[string]any{"type": "date"},
			"ecs":        obj(map[string]any{"version": kw()}),
			"event": obj(map[string]any{
				"kind": kw(), "category": kw(), "type": kw(), "action": kw(), "outcome": kw(),
				"id": kw(), "reason": kw(), "provider": kw(), "dataset": kw(),
				// As in ECS: kept in _source for forensics, not searchable.
				"original": map[string]any{"type": "keyword", "index": false, "doc_values": false},
			}),
			"user":    obj(user),
			"related": obj(map[string]any{"user": kw(), "ip": map[string]any{"type": "ip"}}),
			"source": obj(map[string]any{
				"ip": map[string]any{"type": "ip"},
				"geo": obj(map[string]any{
					"city_name": kw(), "country_iso_code": kw(), "country_name": kw(), "region_iso_code": kw(), "region_name": kw(),
					"location": map[string]any{"type": "geo_point"},
				}),
				"as": obj(map[string]any{
					"number":       map[string]any{"type": "long"},
					"organization": obj(map[string]any{"name": kwText()}),
				}),
			}),
			"cloud":      obj(map[string]any{"provider": kw(), "account": obj(map[string]any{"id": kw()})}),
			"user_agent": obj(map[string]any{"original": kwText()}),
			"azure": obj(map[string]any{
				"correlation_id": kw(), "tenant_id": kw(), "resource_id": kw(),
				"auditlogs": obj(map[string]any{
					"category": kw(), "operation_name": kw(), "operation_type": kw(), "operation_version": kw(),
					"result": kw(), "result_reason": kw(), "logged_by_service": kw(),
					"additional_details": freeForm,
					"initiated_by": obj(map[string]any{"app": obj(map[string]any{
						"app_id": kw(), "display_name": kw(), "service_principal_id": kw(), "service_principal_name": kw(),
					})}),
					"target_resources": obj(map[string]any{
						"id": kw(), "display_name": kw(), "type": kw(), "user_principal_name": kw(), "group_type": kw(),
						"modified_properties": obj(map[string]any{"display_name": kw(), "old_value": kw(), "new_value": kw()}),
					}),
				}),
			}),
			"entra": obj(map[string]any{"sspr": obj(map[string]any{
				"initiator": kw(), "step": kw(), "method": kw(), "blocked": map[string]any{"type": "boolean"},
				"flow": obj(map[string]any{"id": kw()}), "writeback": kw(),
			})}),
		},
	}
}
