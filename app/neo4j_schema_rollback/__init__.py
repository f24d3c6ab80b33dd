"""Apply and safely roll back the QMTL DAG Manager Neo4j schema."""

__version__ = "0.1.0"
PROG = "neo4j-schema-rollback"  # the product's name, written here only
