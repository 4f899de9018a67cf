"""Searching the catalog: cone search now; similarity search arrives with the embeddings."""

from galdb.search.cone import ConeMatch, cone_search, cone_search_sql, parse_angle

__all__ = ["ConeMatch", "cone_search", "cone_search_sql", "parse_angle"]
