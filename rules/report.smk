# The report's per-paper claims pages: each claim of the paper and of our notes, their number and ours, and
# whether it holds at this scale, with the figure beside it (structae.claims); and all the claims in one Markdown
# table, the README's.


localrules:
    claims_page,
    claims_table,


rule claims_page:
    """Check a paper's claims against its table, with the figures that show them."""
    input:
        table="results/tables/{paper}.csv",
        figures=claim_figures,
    output:
        report(
            "results/report/{paper}_claims.html",
            category="{paper}",
            subcategory="claims",
            caption="../report/claims.rst",
        ),
    log:
        "logs/claims_page/{paper}.log",
    wildcard_constraints:
        paper=CLAIMS_PAPER,
    conda:
        "../envs/structae.yaml"
    params:
        scale=SCALE,
    shell:
        "exec structae claims --paper {wildcards.paper:q} --table {input.table:q} --figures {input.figures:q} "
        "--scale {params.scale:q} --out {output:q} > {log:q} 2>&1"


rule claims_table:
    """Every paper's claims in one Markdown table: the README's results table (scripts/readme_claims.py)."""
    input:
        tables=claims_tables,
    output:
        "results/report/claims.md",
    log:
        "logs/claims_table.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae claims-table --tables {input.tables:q} --out {output:q} > {log:q} 2>&1"
