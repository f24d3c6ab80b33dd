"""Apply and safely roll back the QMTL DAG Manager Neo4j schema."""
