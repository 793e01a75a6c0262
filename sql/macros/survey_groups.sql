{#- A survey group as the team map compares it (identifier_key in assets/landing/team_map.py): in
    NFC, without invisible format characters, its runs of whitespace of any kind one space, its
    typographic quotes (‘ ’ “ ”) straight, in lower case. DuckDB lower-cases İ and a word-final Σ
    otherwise than Python, so İ is spelled out first and ς read as σ: a key identifier_key wrote
    (the groups a frozen survey cell stores) and the name it came from give the same text here,
    also a key written before quotes were straightened (both sides are read anew by this macro). -#}
{% macro survey_group_key(text) -%}
    translate(replace(lower(replace(trim(regexp_replace(regexp_replace(nfc_normalize({{ text }}), '\p{Cf}', '', 'g'),
                                                        '[\t-\r\x{1c}-\x{1f}\x{85}\p{Z}]+', ' ', 'g')),
                                    'İ', 'i̇')), 'ς', 'σ'),
              '‘’“”', '''''""')
{%- endmacro %}
