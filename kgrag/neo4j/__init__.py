"""Neo4j: the graph model, the store, the local Bolt server and the exports."""
