# The report's per-paper claims pages: each claim of the paper and of our notes, their number and ours, and
# whether it holds at this scale, with the figure beside it (structae.claims).


localrules:
    claims_page,


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
