# Figures and tables: each file is its own target; figures go into the report, grouped by paper.


localrules:
    figure_data,
    figure_curves,
    figure_model,
    figure_iterations,


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


rule figure_curves:
    input:
        train_logs_of,
    output:
        report("results/figures/{paper}/training_curves.png", category="{paper}", subcategory="training",
               caption="../report/curves.rst"),
    wildcard_constraints:
        paper=TABLE,
    log:
        "logs/figure_curves/{paper}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "structae figure curves --logs {input} --out {output} --title 'training curves: {wildcards.paper}' "
        "> {log} 2>&1"


rule figure_model:
    input:
        unpack(figure_inputs),
    output:
        report("results/figures/{paper}/{figure}_{experiment}.png", category="{paper}", subcategory="{figure}",
               caption="../report/{figure}.rst"),
    wildcard_constraints:
        paper=TABLE,
        figure=MODEL_FIGURE,
        experiment=EXPERIMENT,
    params:
        split=split_option,
    log:
        "logs/figure_model/{paper}/{figure}_{experiment}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "structae figure model --figure {wildcards.figure} --checkpoint {input.model} --data {input.data} "
        "{params.split} --out {output} --title {wildcards.experiment} > {log} 2>&1"


rule figure_iterations:
    input:
        metrics_of,
    output:
        report("results/figures/{paper}/iterations.png", category="{paper}", subcategory="iterations",
               caption="../report/iterations.rst"),
    wildcard_constraints:
        paper="iodine",
    log:
        "logs/figure_iterations/{paper}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "structae figure iterations --metrics {input} --out {output} > {log} 2>&1"
