"""The tables of the embedded SQLite store, in one place: the story tables (the original Supabase schema, jsonb as JSON
text) and the build's own tables (records, operations, claims, reviews) in the same file."""

from __future__ import annotations

import sqlite3

STORY_TABLES = """
create table if not exists stories (
  id text primary key,
  display_name text not null check (length(trim(display_name)) > 0),
  initial_prompt text not null,
  story_constitution text check (story_constitution is null or json_valid(story_constitution)),
  visual_design_document text check (visual_design_document is null or json_valid(visual_design_document)),
  audio_design_document text check (audio_design_document is null or json_valid(audio_design_document)),
  visual_reference_package text check (visual_reference_package is null or json_valid(visual_reference_package)),
  created_at text not null,
  updated_at text not null
);
create table if not exists scenelets (
  id text primary key,
  story_id text not null references stories(id) on delete cascade,
  parent_id text references scenelets(id) on delete cascade,
  choice_label_from_parent text,
  choice_prompt text,
  content text not null check (json_valid(content)),
  is_branch_point integer not null default 0,
  is_terminal_node integer not null default 0,
  branch_audio_file_path text,
  created_at text not null
);
create index if not exists scenelets_story_id_idx on scenelets(story_id);
create table if not exists shots (
  id text primary key,
  story_id text not null references stories(id) on delete cascade,
  scenelet_ref text not null references scenelets(id) on delete cascade,
  scenelet_id text not null,
  scenelet_sequence integer not null check (scenelet_sequence > 0),
  shot_index integer not null check (shot_index > 0),
  storyboard_payload text not null check (json_valid(storyboard_payload)),
  key_frame_image_path text,
  audio_file_path text,
  video_file_path text,
  created_at text not null,
  updated_at text not null,
  unique (story_id, scenelet_id, shot_index)
);
create index if not exists shots_story_scenelet_idx on shots(story_id, scenelet_id, shot_index);
"""

BUILD_TABLES = """
create table if not exists storytree_records (
  story_id text not null, task text not null, output text not null, signature text not null, inputs text not null,
  output_sha256 text not null, output_size integer not null, output_mtime_ns integer not null,
  provider text not null, model text not null, prompt_sha256 text not null, built_at text not null,
  published integer not null default 0, identity text not null default '', origin text not null default 'built',
  built_by text not null default '', detail text not null default '',
  primary key (story_id, task)
);
create table if not exists storytree_operations (
  story_id text not null, task text not null, signature text not null, provider text not null, model text not null,
  state text not null, operation text, submitted_at text not null, download_uri text, error text,
  primary key (story_id, task)
);
create table if not exists storytree_claims (
  story_id text not null, task text not null, owner text not null, claimed_at text not null,
  expires_at text not null,
  primary key (story_id, task)
);
create table if not exists storytree_reviews (
  story_id text not null, task text not null, output_sha256 text not null, verdict text not null,
  note text not null default '', reviewed_by text not null default '', reviewed_at text not null,
  primary key (story_id, task)
);
"""


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create every table and index that is missing (all statements are `if not exists`)."""
    conn.executescript(STORY_TABLES + BUILD_TABLES)
