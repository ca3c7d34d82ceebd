# Figures and tables: each file is its own target; figures go into the report, grouped by paper.


rule figure_data:
    input:
        processed_first,
    output:
        report("results/figures/data/{dataset}.png", category="data", caption="../report/data.rst"),
    log:
        "logs/figure_data/{dataset}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "structae data inspect --data {input} --out {output} > {log} 2>&1"
