FROM busybox
WORKDIR /app
COPY a.txt ./
RUN echo hi > out.txt
ENV A=b
CMD ["sh"]
