// Kept apart from the etcd client code so that naming it does not load the
// client (the daemon's message for a missing config uses it).

/**
 * flannel's own words when <prefix>/config is missing: the usual cause is a
 * config written with the etcd v2 API (etcdctl set), which v3 cannot see.
 */
export const CONFIG_NOT_FOUND_HINT = 'flannel config not found in etcd store. Did you create your config using etcdv3 API?'
