// The real node's sandbox image program (tests/cluster/realnode.py builds it; no dependencies).
module jobline.dev/testcluster/pause

go 1.25.0
